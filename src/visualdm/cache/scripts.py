"""The Lua scripts that make each Redis cache change atomic (the memory backend's rules).

An entry is one string, `kind|version|ms|payload`, so a cache hit is a single GET (cheaper to
parse than a hash's array reply) and the scripts read the header in place. For n tags, KEYS holds
the entry (when there is one), then n tag sets, then n tag counters. Every script that changes
what readers may see PUBLISHes its notice, so other processes drop their local copies.
"""

from __future__ import annotations

# Helpers shared by the scripts; `base` is the index of the first tag set in KEYS.
_COMMON = """
local function invalidate(base, n, spare, gen_ttl)
  for i = base, base + n - 1 do
    for _, member in ipairs(redis.call('SMEMBERS', KEYS[i])) do
      if member ~= spare then redis.call('DEL', member) end
    end
    redis.call('DEL', KEYS[i])
    redis.call('INCR', KEYS[i + n])
    redis.call('PEXPIRE', KEYS[i + n], gen_ttl)
  end
end
local function register(key, base, n, ttl)
  for i = base, base + n - 1 do
    redis.call('SADD', KEYS[i], key)
    -- a tag set lives as long as its longest-lived member, then expires with it
    if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
  end
end
local function newer(v, t)
  local cur = redis.call('GET', KEYS[1])
  if not cur then return true, false end
  local kind, cv, ct = string.match(cur, '^([vnx])|(%-?%d+)|(%d+)|')
  if not kind then return true, false end  -- not an entry of ours: overwrite it
  cv, ct = tonumber(cv), tonumber(ct)
  local wins = v > cv or (v == cv and t > ct)
  -- a tombstone that knows the deleted version yields only to a newer version (a restore);
  -- one that does not yields to any later write
  if kind == 'x' then
    if cv < 0 then return t > ct, true end
    return wins, true
  end
  return wins, false
end
local function store(kind, payload, v, t, ttl)
  redis.call('SET', KEYS[1], string.format('%s|%d|%d|', kind, v, t) .. payload, 'PX', ttl)
end
"""

# ARGV: kind, payload, version, ms, ttl_ms, n, seen_1..seen_n
FILL = (
    _COMMON
    + """
local n = tonumber(ARGV[6])
for i = 1, n do
  local current = redis.call('GET', KEYS[1 + n + i]) or '0'
  if current ~= ARGV[6 + i] then return 0 end
end
local v, t, ttl = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local wins, tombstone = newer(v, t)
if tombstone or not wins then return 0 end
store(ARGV[1], ARGV[2], v, t, ttl)
register(KEYS[1], 2, n, ttl)
return 1
"""
)

# ARGV: payload, version, ms, ttl_ms, n, gen_ttl_ms, channel, notice
WRITE = (
    _COMMON
    + """
local n = tonumber(ARGV[5])
local v, t, ttl = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
invalidate(2, n, KEYS[1], ARGV[6])
local stored = 0
if newer(v, t) then
  store('v', ARGV[1], v, t, ttl)
  stored = 1
else
  ttl = redis.call('PTTL', KEYS[1])
end
if ttl > 0 then register(KEYS[1], 2, n, ttl) end
redis.call('PUBLISH', ARGV[7], ARGV[8])
return stored
"""
)

# ARGV: version (-1: unknown), ms, ttl_ms, n, gen_ttl_ms, channel, notice
EVICT = (
    _COMMON
    + """
local n = tonumber(ARGV[4])
local v, t, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
invalidate(2, n, KEYS[1], ARGV[5])
-- a delete that knows its version loses to a newer one already cached (a restore came first)
if v < 0 or newer(v, t) then
  store('x', '', v, t, ttl)
else
  ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then register(KEYS[1], 2, n, ttl) end
end
redis.call('PUBLISH', ARGV[6], ARGV[7])
return 1
"""
)

# ARGV: n, gen_ttl_ms, channel, notice
INVALIDATE = (
    _COMMON
    + """
invalidate(1, tonumber(ARGV[1]), false, ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
"""
)

# ARGV: channel, notice. KEYS: entries to delete.
DROP = """
for _, key in ipairs(KEYS) do redis.call('DEL', key) end
redis.call('PUBLISH', ARGV[1], ARGV[2])
return 1
"""
