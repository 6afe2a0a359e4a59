/*
 * C core of visualdm.spatial.rtree.RTree: an RBush-style 2-D R-tree (see rtree.py's docstring
 * for the algorithms and papers). The Python class validates arrays and delegates everything
 * else here.
 *
 * Layout: a node holds its own bounding box and, contiguously, the boxes of its entries plus one
 * pointer per entry: the caller's item (an owned PyObject reference) in a leaf (height 1), a child
 * Node above. A child's box is thus stored twice (in itself and in its parent's box array) so that
 * scanning a node reads one contiguous block; every change of a child's box refreshes the copy.
 *
 * Exception safety: every mutation validates its input and reserves the nodes it may need (a pool
 * of spare nodes) before it changes anything, so an error never leaves the tree half-updated.
 * Python code called back from inside a traversal (a kNN predicate, a remove equality) runs with
 * the tree marked busy; a mutation attempted then raises RuntimeError instead of corrupting it.
 * References to items are released only once the tree is consistent again, since a release may
 * run arbitrary finalizers.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define MAX_HEIGHT 96 /* min fill >= 2 keeps real trees far below this; imports are checked */

#ifdef __SIZEOF_INT128__
__extension__ typedef unsigned __int128 tie_t; /* depth-first path numbers of kNN entries */
#else
typedef unsigned long long tie_t;
#endif

typedef struct Node {
    double bbox[4]; /* min_x, min_y, max_x, max_y; inverted infinite when empty */
    int height;     /* 1 for a leaf */
    int count;
    double (*box)[4]; /* max_entries + 1 entry boxes (one spare slot before a split) */
    void **ptr;       /* PyObject * items in a leaf, Node * children above */
} Node;

typedef struct {
    PyObject_HEAD
    Node *root;
    Py_ssize_t size;
    int max_entries;
    int min_entries;
    int busy;          /* > 0 while a callback into Python runs inside a traversal */
    Node *spare;       /* pool of free nodes, linked through ptr[0] */
    Py_ssize_t nspare;
    int *split_order;  /* scratch for splits: 2 x (max_entries + 1) ints */
    double *split_box; /* scratch for splits: prefix and suffix boxes */
    void **split_ptr;
    double (*split_ent)[4];
} TreeObject;

static PyObject *InvalidBoxError;

/* ---------------------------------------------------------------------------------------- */
/* boxes */

static inline void box_empty(double *b)
{
    b[0] = b[1] = INFINITY;
    b[2] = b[3] = -INFINITY;
}

static inline void box_extend(double *b, const double *e)
{
    if (e[0] < b[0]) b[0] = e[0];
    if (e[1] < b[1]) b[1] = e[1];
    if (e[2] > b[2]) b[2] = e[2];
    if (e[3] > b[3]) b[3] = e[3];
}

static inline int box_intersects(const double *b, const double *q)
{
    return b[0] <= q[2] && b[1] <= q[3] && b[2] >= q[0] && b[3] >= q[1];
}

static inline int box_within(const double *b, const double *q) /* b inside q */
{
    return q[0] <= b[0] && q[1] <= b[1] && b[2] <= q[2] && b[3] <= q[3];
}

static inline int box_valid(const double *b)
{
    /* NaN fails every comparison, so this rejects NaN, infinities and inversion at once. */
    return -INFINITY < b[0] && b[0] <= b[2] && b[2] < INFINITY && -INFINITY < b[1] &&
           b[1] <= b[3] && b[3] < INFINITY;
}

static inline int box_equal(const double *a, const double *b)
{
    return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3];
}

static void node_refit(Node *n)
{
    box_empty(n->bbox);
    for (int i = 0; i < n->count; i++) box_extend(n->bbox, n->box[i]);
}

static inline double sq_dist(const double *b, double x, double y)
{
    double dx, dy;
    if (x < b[0]) dx = b[0] - x;
    else dx = x > b[2] ? x - b[2] : 0.0;
    if (y < b[1]) dy = b[1] - y;
    else dy = y > b[3] ? y - b[3] : 0.0;
    return dx * dx + dy * dy;
}

/* ---------------------------------------------------------------------------------------- */
/* node pool */

static Node *node_alloc(int max_entries)
{
    size_t cap = (size_t)max_entries + 1;
    Node *n = PyMem_Malloc(sizeof(Node) + cap * 4 * sizeof(double) + cap * sizeof(void *));
    if (n == NULL) return NULL;
    n->box = (double (*)[4])(n + 1);
    n->ptr = (void **)(n->box + cap);
    return n;
}

/* Make sure `need` spare nodes exist; MemoryError (and nothing changed) otherwise. */
static int reserve(TreeObject *t, Py_ssize_t need)
{
    while (t->nspare < need) {
        Node *n = node_alloc(t->max_entries);
        if (n == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        n->ptr[0] = t->spare;
        t->spare = n;
        t->nspare++;
    }
    return 0;
}

/* Take a reserved node (the caller reserved it, so this cannot fail). */
static Node *take(TreeObject *t, int height)
{
    Node *n = t->spare;
    t->spare = n->ptr[0];
    t->nspare--;
    n->height = height;
    n->count = 0;
    box_empty(n->bbox);
    return n;
}

static void give_back(TreeObject *t, Node *n)
{
    n->ptr[0] = t->spare;
    t->spare = n;
    t->nspare++;
}

static int tree_height(const TreeObject *t) { return t->root->height; }

/* Spare nodes one insertion may need: a split per level plus a new root. */
static Py_ssize_t need_insert(const TreeObject *t, Py_ssize_t inserts)
{
    return inserts * (tree_height(t) + inserts + 2);
}

/* Spare nodes reserved before a removal. Its condense reinserts fewer than min entries per
 * level, each able to split every level: h * min * (h + 2) in the worst case. That bound is
 * reserved up front unless it would exceed REMOVE_RESERVE_BYTES (very large nodes); then
 * condense tops the pool up before each reinsertion instead. */
#define REMOVE_RESERVE_BYTES (4 << 20)

static size_t node_bytes(const TreeObject *t)
{
    return sizeof(Node) + ((size_t)t->max_entries + 1) * (4 * sizeof(double) + sizeof(void *));
}

static Py_ssize_t need_remove(const TreeObject *t)
{
    Py_ssize_t h = tree_height(t);
    Py_ssize_t worst = h * t->min_entries * (h + 2) + 2;
    Py_ssize_t cap = (Py_ssize_t)(REMOVE_RESERVE_BYTES / node_bytes(t));
    return worst < cap ? worst : (cap > h + 2 ? cap : h + 2);
}

/* Free spare nodes beyond what the next operations are likely to need. */
static void trim_pool(TreeObject *t)
{
    Py_ssize_t keep = 2 * need_remove(t) + 16;
    while (t->nspare > keep) {
        Node *n = t->spare;
        t->spare = n->ptr[0];
        t->nspare--;
        PyMem_Free(n);
    }
}

/* Free a detached subtree; with `decref`, release its items (may run finalizers). */
static void free_subtree(Node *n, int decref)
{
    if (n->height == 1) {
        if (decref)
            for (int i = 0; i < n->count; i++) Py_DECREF((PyObject *)n->ptr[i]);
    } else {
        for (int i = 0; i < n->count; i++) free_subtree((Node *)n->ptr[i], decref);
    }
    PyMem_Free(n);
}

static void gather_items(const Node *n, uintptr_t *out, Py_ssize_t *at)
{
    if (n->height == 1) {
        for (int i = 0; i < n->count; i++) out[(*at)++] = (uintptr_t)n->ptr[i];
    } else {
        for (int i = 0; i < n->count; i++) gather_items((const Node *)n->ptr[i], out, at);
    }
}

/* Free a detached tree of `size` items and release them in address order: the items of a large
 * tree lie in spatial order, scattered in memory, and releasing them in that order missed the
 * cache on every tuple and its floats. A radix sort of the addresses costs far less. */
static void free_tree(Node *root, Py_ssize_t size)
{
    enum { DIGITS = 1 << 16 };
    size_t bytes = sizeof(uintptr_t) * 2 * (size_t)size + sizeof(Py_ssize_t) * (DIGITS + 1);
    uintptr_t *block = size > 4096 ? PyMem_Malloc(bytes) : NULL;
    if (block == NULL) {
        free_subtree(root, 1);
        return;
    }
    uintptr_t *a = block, *b = block + size;
    Py_ssize_t *count = (Py_ssize_t *)(block + 2 * size), n = 0;
    gather_items(root, a, &n);
    free_subtree(root, 0);
    for (int shift = 0; shift < 64; shift += 16) {
        memset(count, 0, sizeof(Py_ssize_t) * (DIGITS + 1));
        for (Py_ssize_t i = 0; i < n; i++) count[((a[i] >> shift) & 0xFFFF) + 1]++;
        if (count[((a[0] >> shift) & 0xFFFF) + 1] == n) continue; /* all alike in this digit */
        for (int d = 0; d < DIGITS; d++) count[d + 1] += count[d];
        for (Py_ssize_t i = 0; i < n; i++) b[count[(a[i] >> shift) & 0xFFFF]++] = a[i];
        uintptr_t *tmp = a;
        a = b;
        b = tmp;
    }
    for (Py_ssize_t i = 0; i < n; i++) Py_DECREF((PyObject *)a[i]);
    PyMem_Free(block);
}

/* ---------------------------------------------------------------------------------------- */
/* argument parsing */

static inline int as_double(PyObject *o, double *out)
{
    if (PyFloat_CheckExact(o)) {
        *out = PyFloat_AS_DOUBLE(o);
        return 0;
    }
    double v = PyFloat_AsDouble(o);
    if (v == -1.0 && PyErr_Occurred()) return -1;
    *out = v;
    return 0;
}

/* A tuple of floats and an id that the cyclic GC does not track (an int, a string, ...) can
 * never be part of a cycle; untracking it, as CPython's own GC would on its next pass, keeps a
 * large load from making every later collection walk a million containers. */
static inline void untrack_if_atomic(PyObject *item, PyObject *id)
{
    if (!PyObject_GC_IsTracked(id)) PyObject_GC_UnTrack(item);
}

static void raise_invalid_box(const double *b)
{
    PyObject *t = Py_BuildValue("(dddd)", b[0], b[1], b[2], b[3]);
    if (t == NULL) return;
    PyErr_Format(InvalidBoxError, "box must be finite with min <= max, got %R", t);
    Py_DECREF(t);
}

static void raise_shape(PyObject *obj, const char *what)
{
    /* Raise InvalidBoxError with the current error as its cause, as `raise ... from exc`. */
    PyObject *type, *value, *tb, *t2, *v2, *tb2;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    PyErr_Format(InvalidBoxError, "%s, got %R", what, obj);
    PyErr_Fetch(&t2, &v2, &tb2);
    PyErr_NormalizeException(&t2, &v2, &tb2);
    if (v2 != NULL && value != NULL) {
        PyException_SetCause(v2, value); /* steals value */
        value = NULL;
    }
    PyErr_Restore(t2, v2, tb2);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
}

/* Read box[0..3] of any indexable object and check it; InvalidBoxError otherwise. */
static int parse_box(PyObject *obj, double *b)
{
    static const char *what = "expected (min_x, min_y, max_x, max_y, ...)";
    if (PyTuple_Check(obj) || PyList_Check(obj)) {
        PyObject **items = PySequence_Fast_ITEMS(obj);
        if (PySequence_Fast_GET_SIZE(obj) < 4) {
            PyErr_Format(InvalidBoxError, "%s, got %R", what, obj);
            return -1;
        }
        for (int i = 0; i < 4; i++)
            if (as_double(items[i], &b[i]) < 0) {
                raise_shape(obj, what);
                return -1;
            }
    } else {
        for (int i = 0; i < 4; i++) {
            PyObject *v = PySequence_GetItem(obj, i);
            if (v == NULL || as_double(v, &b[i]) < 0) {
                Py_XDECREF(v);
                raise_shape(obj, what);
                return -1;
            }
            Py_DECREF(v);
        }
    }
    if (!box_valid(b)) {
        raise_invalid_box(b);
        return -1;
    }
    return 0;
}

/* An item is a 5-tuple (min_x, min_y, max_x, max_y, id) with a valid box. */
static int parse_item(PyObject *item, double *b)
{
    if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 5) {
        PyErr_Format(InvalidBoxError,
                     "an item is a tuple (min_x, min_y, max_x, max_y, id), got %R", item);
        return -1;
    }
    for (int i = 0; i < 4; i++)
        if (as_double(PyTuple_GET_ITEM(item, i), &b[i]) < 0) {
            raise_shape(item, "coordinates must be numbers");
            return -1;
        }
    if (!box_valid(b)) {
        raise_invalid_box(b);
        return -1;
    }
    return 0;
}

static int parse_point(PyObject *ox, PyObject *oy, double *x, double *y)
{
    if (as_double(ox, x) < 0 || as_double(oy, y) < 0) {
        PyObject *p = PyTuple_Pack(2, ox, oy);
        if (p != NULL) {
            raise_shape(p, "a point is two numbers");
            Py_DECREF(p);
        }
        return -1;
    }
    if (!isfinite(*x) || !isfinite(*y)) {
        double b[4] = {*x, *y, *x, *y};
        raise_invalid_box(b);
        return -1;
    }
    return 0;
}

/* Squared distance limit for max_distance (None: infinite). */
static int parse_limit(PyObject *md, double *limit)
{
    if (md == Py_None) {
        *limit = INFINITY;
        return 0;
    }
    double d;
    if (as_double(md, &d) < 0) return -1;
    if (!(d >= 0)) {
        PyErr_SetString(PyExc_ValueError, "max_distance must be a non-negative number");
        return -1;
    }
    *limit = d * d;
    return 0;
}

static int parse_k(PyObject *ok, Py_ssize_t *k)
{
    *k = PyNumber_AsSsize_t(ok, NULL);
    if (*k == -1 && PyErr_Occurred()) return -1;
    if (*k < 0) {
        PyErr_SetString(PyExc_ValueError, "k must be non-negative");
        return -1;
    }
    return 0;
}

static int check_not_busy(TreeObject *t)
{
    if (t->busy) {
        PyErr_SetString(PyExc_RuntimeError,
                        "the RTree cannot change while a predicate or equality it called runs");
        return -1;
    }
    return 0;
}

/* A read-only C-contiguous float64 buffer of rows of `width` values. */
static int get_rows(PyObject *obj, Py_buffer *view, int width, Py_ssize_t *rows)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return -1;
    if (view->itemsize != 8 || view->format == NULL || strcmp(view->format, "d") != 0 ||
        view->len % (8 * width) != 0) {
        PyBuffer_Release(view);
        PyErr_Format(PyExc_TypeError, "expected a contiguous float64 array of %d columns", width);
        return -1;
    }
    *rows = view->len / (8 * width);
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* insertion and splits (Guttman choose-subtree, R* split as in RBush) */

static void sort_entries(const Node *n, int axis, int *order)
{
    /* Stable insertion sort of entry indices by min coordinate; nodes are small. */
    int count = n->count;
    for (int i = 0; i < count; i++) {
        int v = order[i] = i;
        double key = n->box[v][axis];
        int j = i - 1;
        while (j >= 0 && n->box[order[j]][axis] > key) {
            order[j + 1] = order[j];
            j--;
        }
        order[j + 1] = v;
    }
}

/* Prefix and suffix boxes of the ordered entries; returns the summed margins of splits. */
static double distributions(const Node *n, const int *order, int m, double *pre, double *suf)
{
    int count = n->count;
    double b[4];
    box_empty(b);
    for (int i = 1; i <= count; i++) {
        box_extend(b, n->box[order[i - 1]]);
        memcpy(pre + 4 * i, b, sizeof b);
    }
    box_empty(b);
    for (int i = count - 1; i >= 0; i--) {
        box_extend(b, n->box[order[i]]);
        memcpy(suf + 4 * i, b, sizeof b);
    }
    double margin = 0.0;
    for (int i = m; i <= count - m; i++) {
        const double *a = pre + 4 * i, *c = suf + 4 * i;
        margin += a[2] - a[0] + a[3] - a[1] + c[2] - c[0] + c[3] - c[1];
    }
    return margin;
}

static Node *make_parent(TreeObject *t, Node *a, Node *b)
{
    Node *p = take(t, a->height + 1);
    memcpy(p->box[0], a->bbox, sizeof a->bbox);
    memcpy(p->box[1], b->bbox, sizeof b->bbox);
    p->ptr[0] = a;
    p->ptr[1] = b;
    p->count = 2;
    node_refit(p);
    return p;
}

static inline void node_append(Node *n, const double *b, void *ptr)
{
    memcpy(n->box[n->count], b, 4 * sizeof(double));
    n->ptr[n->count] = ptr;
    n->count++;
}

/* Split the overflowing path[level]: the axis minimises summed margins, the index overlap, then
 * area. The upper part moves to a new sibling appended to the parent (or a new root). */
static void split(TreeObject *t, Node **path, const int *idx, int level)
{
    Node *node = path[level];
    int n = node->count, m = t->min_entries;
    int *ox = t->split_order, *oy = t->split_order + (t->max_entries + 1);
    size_t stride = 4 * ((size_t)t->max_entries + 2);
    double *pre_x = t->split_box, *suf_x = pre_x + stride;
    double *pre_y = suf_x + stride, *suf_y = pre_y + stride;
    sort_entries(node, 0, ox);
    sort_entries(node, 1, oy);
    double margin_x = distributions(node, ox, m, pre_x, suf_x);
    double margin_y = distributions(node, oy, m, pre_y, suf_y);
    int *order = ox;
    double *pre = pre_x, *suf = suf_x;
    if (!(margin_x < margin_y)) {
        order = oy;
        pre = pre_y;
        suf = suf_y;
    }
    int at = n - m;
    double best_overlap = INFINITY, best_area = INFINITY;
    for (int i = m; i <= n - m; i++) {
        const double *a = pre + 4 * i, *b = suf + 4 * i;
        double w = (a[2] < b[2] ? a[2] : b[2]) - (a[0] > b[0] ? a[0] : b[0]);
        double h = (a[3] < b[3] ? a[3] : b[3]) - (a[1] > b[1] ? a[1] : b[1]);
        double overlap = w > 0 && h > 0 ? w * h : 0.0;
        double area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]);
        if (overlap < best_overlap || (overlap == best_overlap && area < best_area)) {
            at = i;
            best_overlap = overlap;
            best_area = area;
        }
    }
    for (int i = 0; i < n; i++) {
        memcpy(t->split_ent[i], node->box[order[i]], 4 * sizeof(double));
        t->split_ptr[i] = node->ptr[order[i]];
    }
    Node *sibling = take(t, node->height);
    node->count = 0;
    for (int i = 0; i < at; i++) node_append(node, t->split_ent[i], t->split_ptr[i]);
    for (int i = at; i < n; i++) node_append(sibling, t->split_ent[i], t->split_ptr[i]);
    memcpy(node->bbox, pre + 4 * at, sizeof node->bbox);
    memcpy(sibling->bbox, suf + 4 * at, sizeof sibling->bbox);
    if (level > 0) {
        Node *parent = path[level - 1];
        memcpy(parent->box[idx[level - 1]], node->bbox, sizeof node->bbox);
        node_append(parent, sibling->bbox, sibling);
    } else {
        t->root = make_parent(t, node, sibling);
    }
}

/* Put an item (target 1) or a node (target: its height + 1) into a node of height `target`,
 * descending by least enlargement, then least area. The caller reserved the spare nodes. */
static void insert_entry(TreeObject *t, const double *e, void *ptr, int target)
{
    Node *path[MAX_HEIGHT];
    int idx[MAX_HEIGHT];
    Node *node = t->root;
    int depth = 0;
    for (;;) {
        /* Enlarging on the way down is final: splits below only redistribute the same union. */
        box_extend(node->bbox, e);
        path[depth] = node;
        if (node->height <= target) break;
        int best = 0;
        double best_enl = INFINITY, best_area = INFINITY;
        for (int i = 0; i < node->count; i++) {
            const double *c = node->box[i];
            double area = (c[2] - c[0]) * (c[3] - c[1]);
            double enl = (((e[2] > c[2] ? e[2] : c[2]) - (e[0] < c[0] ? e[0] : c[0])) *
                          ((e[3] > c[3] ? e[3] : c[3]) - (e[1] < c[1] ? e[1] : c[1]))) -
                         area;
            if (enl < best_enl || (enl == best_enl && area < best_area)) {
                best = i;
                best_enl = enl;
                best_area = area;
            }
        }
        box_extend(node->box[best], e);
        idx[depth] = best;
        node = (Node *)node->ptr[best];
        depth++;
    }
    node_append(node, e, ptr);
    for (int level = depth; level >= 0 && path[level]->count > t->max_entries; level--)
        split(t, path, idx, level);
}

/* Merge a packed subtree into a non-empty tree without creating underfull nodes (the
 * Small-Tree-Large-Tree step of RBush's load). */
static void merge(TreeObject *t, Node *packed)
{
    Node *small = packed, *big = t->root;
    if (small->height > big->height ||
        (small->height == big->height && small->count > big->count)) {
        small = t->root;
        big = packed;
        t->root = big;
    }
    if (small->count < t->min_entries) {
        /* An underfull root cannot become an inner node; place its entries instead. */
        for (int i = 0; i < small->count; i++)
            insert_entry(t, small->box[i], small->ptr[i], small->height);
        give_back(t, small);
    } else if (small->height == big->height) {
        t->root = make_parent(t, big, small);
    } else {
        insert_entry(t, small->bbox, small, small->height + 1);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* OMT bulk load */

typedef struct {
    double b[4];
    PyObject *obj; /* owned reference, handed to the tree by the build */
} Elem;

static void sort_elems(Elem *a, Py_ssize_t left, Py_ssize_t right, int axis)
{
    for (Py_ssize_t i = left + 1; i <= right; i++) {
        Elem v = a[i];
        Py_ssize_t j = i - 1;
        while (j >= left && a[j].b[axis] > v.b[axis]) {
            a[j + 1] = a[j];
            j--;
        }
        a[j + 1] = v;
    }
}

static inline void swap_elems(Elem *a, Py_ssize_t i, Py_ssize_t j)
{
    Elem tmp = a[i];
    a[i] = a[j];
    a[j] = tmp;
}

/* Reorder a[left..right] so that a[k] holds its sorted value, smaller keys before it and
 * larger after (quickselect, median-of-three pivots). */
static void select_nth(Elem *a, Py_ssize_t left, Py_ssize_t right, Py_ssize_t k, int axis)
{
    while (right > left) {
        if (right - left < 16) {
            sort_elems(a, left, right, axis);
            return;
        }
        Py_ssize_t mid = left + (right - left) / 2;
        if (a[mid].b[axis] < a[left].b[axis]) swap_elems(a, mid, left);
        if (a[right].b[axis] < a[left].b[axis]) swap_elems(a, right, left);
        if (a[right].b[axis] < a[mid].b[axis]) swap_elems(a, right, mid);
        double pivot = a[mid].b[axis];
        Py_ssize_t i = left, j = right;
        while (i <= j) {
            while (a[i].b[axis] < pivot) i++;
            while (a[j].b[axis] > pivot) j--;
            if (i <= j) {
                swap_elems(a, i, j);
                i++;
                j--;
            }
        }
        if (k <= j) right = j;
        else if (k >= i) left = i;
        else return;
    }
}

/* Partition a[left..right) at the sorted positions cuts[0..ncuts) (ascending, inside). */
static void multi_select(Elem *a, Py_ssize_t left, Py_ssize_t right, const Py_ssize_t *cuts,
                         int ncuts, int axis)
{
    if (ncuts <= 0) return;
    int mid = ncuts / 2;
    Py_ssize_t p = cuts[mid];
    select_nth(a, left, right - 1, p, axis);
    multi_select(a, left, p, cuts, mid, axis);
    multi_select(a, p + 1, right, cuts + mid + 1, ncuts - mid - 1, axis);
}

static Py_ssize_t pow_capped(int base, int exp)
{
    Py_ssize_t v = 1;
    for (int i = 0; i < exp; i++) {
        if (v > PY_SSIZE_T_MAX / base) return PY_SSIZE_T_MAX;
        v *= base;
    }
    return v;
}

static int omt_height(Py_ssize_t n, int max_entries)
{
    int height = 1;
    Py_ssize_t cap = max_entries;
    while (cap < n) {
        cap = cap > PY_SSIZE_T_MAX / max_entries ? PY_SSIZE_T_MAX : cap * max_entries;
        height++;
    }
    return height;
}

/* Nodes of the OMT pack of n items at the given height (children sized as in omt_build). */
static Py_ssize_t omt_count(Py_ssize_t n, int height, int max_entries)
{
    if (height == 1) return 1;
    Py_ssize_t child_cap = pow_capped(max_entries, height - 1);
    Py_ssize_t k = (n + child_cap - 1) / child_cap, q = n / k, r = n % k;
    Py_ssize_t total = 1 + (k - r) * omt_count(q, height - 1, max_entries);
    if (r) total += r * omt_count(q + 1, height - 1, max_entries);
    return total;
}

/* Top-down OMT: a node of height h over n items gets k = ceil(n / M^(h-1)) children of sizes
 * floor(n/k) or ceil(n/k), laid out as ceil(sqrt(k)) vertical slabs by min x, each cut into
 * tiles by min y. Even division keeps every node at least half full. Nodes come from the pool,
 * reserved by the caller (omt_count). */
static Node *omt_build(TreeObject *t, Elem *e, Py_ssize_t n, int height, Py_ssize_t *scratch)
{
    Node *node = take(t, height);
    if (height == 1) {
        for (Py_ssize_t i = 0; i < n; i++) node_append(node, e[i].b, e[i].obj);
        node_refit(node);
        return node;
    }
    int M = t->max_entries;
    Py_ssize_t child_cap = pow_capped(M, height - 1);
    Py_ssize_t k = (n + child_cap - 1) / child_cap, q = n / k, r = n % k;
    Py_ssize_t slabs = (Py_ssize_t)ceil(sqrt((double)k));
    while (slabs * slabs < k) slabs++;
    /* Per level: group g covers [start[g], start[g + 1]); slab_of[g]; cut positions. */
    Py_ssize_t *start = scratch, *slab_of = start + M + 2, *cuts = slab_of + M + 2;
    start[0] = 0;
    for (Py_ssize_t g = 0; g < k; g++) {
        start[g + 1] = start[g] + q + (g < r ? 1 : 0);
        slab_of[g] = ((g + 1) * slabs + k - 1) / k - 1;
    }
    int ncuts = 0;
    for (Py_ssize_t g = 1; g < k; g++)
        if (slab_of[g] != slab_of[g - 1]) cuts[ncuts++] = start[g];
    multi_select(e, 0, n, cuts, ncuts, 0);
    for (Py_ssize_t g0 = 0; g0 < k;) {
        Py_ssize_t g1 = g0 + 1;
        while (g1 < k && slab_of[g1] == slab_of[g0]) g1++;
        ncuts = 0;
        for (Py_ssize_t g = g0 + 1; g < g1; g++) cuts[ncuts++] = start[g];
        multi_select(e, start[g0], start[g1], cuts, ncuts, 1);
        g0 = g1;
    }
    for (Py_ssize_t g = 0; g < k; g++) {
        Node *child =
            omt_build(t, e + start[g], start[g + 1] - start[g], height - 1, cuts + M + 2);
        node_append(node, child->bbox, child);
    }
    node_refit(node);
    return node;
}

/* Add n validated elements (their references move into the tree); all-or-nothing. */
static int load_elems(TreeObject *t, Elem *e, Py_ssize_t n)
{
    if (n == 0) return 0;
    if (n < t->min_entries) {
        if (reserve(t, need_insert(t, n)) < 0) return -1;
        for (Py_ssize_t i = 0; i < n; i++) insert_entry(t, e[i].b, e[i].obj, 1);
        t->size += n;
        return 0;
    }
    int height = omt_height(n, t->max_entries);
    int top = height > tree_height(t) ? height : tree_height(t);
    Py_ssize_t need = omt_count(n, height, t->max_entries) +
                      (Py_ssize_t)t->min_entries * (top + t->min_entries + 2) + top + 4;
    Py_ssize_t *scratch =
        PyMem_Malloc(sizeof(Py_ssize_t) * 3 * ((size_t)t->max_entries + 2) * (size_t)height);
    if (scratch == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    if (reserve(t, need) < 0) {
        PyMem_Free(scratch);
        return -1;
    }
    Node *packed = omt_build(t, e, n, height, scratch);
    PyMem_Free(scratch);
    if (t->size == 0) {
        give_back(t, t->root);
        t->root = packed;
    } else {
        merge(t, packed);
    }
    t->size += n;
    trim_pool(t);
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* removal with condense */

/* Depth-first search for `item` under nodes whose box contains `b`: 1 found (path, idx and
 * *pos describe where), 0 not found, -1 error from `equals`. */
static int find_item(TreeObject *t, Node *node, const double *b, PyObject *item,
                     PyObject *equals, Node **path, int *idx, int depth, int *leaf_depth,
                     int *pos)
{
    path[depth] = node;
    if (node->height == 1) {
        for (int i = 0; i < node->count; i++) {
            PyObject *c = (PyObject *)node->ptr[i];
            int hit;
            if (equals == NULL) {
                hit = c == item;
            } else {
                PyObject *args[2] = {item, c};
                PyObject *r = PyObject_Vectorcall(equals, args, 2, NULL);
                if (r == NULL) return -1;
                hit = PyObject_IsTrue(r);
                Py_DECREF(r);
                if (hit < 0) return -1;
            }
            if (hit) {
                *leaf_depth = depth;
                *pos = i;
                return 1;
            }
        }
        return 0;
    }
    for (int i = 0; i < node->count; i++) {
        const double *c = node->box[i];
        if (c[0] <= b[0] && c[1] <= b[1] && c[2] >= b[2] && c[3] >= b[3]) {
            idx[depth] = i;
            int r = find_item(t, (Node *)node->ptr[i], b, item, equals, path, idx, depth + 1,
                              leaf_depth, pos);
            if (r) return r;
        }
    }
    return 0;
}

static inline void node_delete(Node *n, int i)
{
    int tail = n->count - i - 1;
    memmove(n->box[i], n->box[i + 1], (size_t)tail * 4 * sizeof(double));
    memmove(&n->ptr[i], &n->ptr[i + 1], (size_t)tail * sizeof(void *));
    n->count--;
}

typedef struct {
    double b[4];
    void *ptr;
    int target;
} Orphan;

/* After a removal at path[depth]: drop underfull nodes, refit boxes, reinsert orphans at
 * their level (higher first, so that the tree is tall enough for them). `list` has room for
 * every orphan: fewer than min_entries per level. */
static void condense(TreeObject *t, Node **path, const int *idx, int depth, Orphan *list)
{
    int norph = 0;
    for (int i = depth; i > 0; i--) {
        Node *node = path[i], *parent = path[i - 1];
        if (node->count < t->min_entries) {
            node_delete(parent, idx[i - 1]);
            for (int j = 0; j < node->count; j++) {
                memcpy(list[norph].b, node->box[j], 4 * sizeof(double));
                list[norph].ptr = node->ptr[j];
                list[norph].target = node->height;
                norph++;
            }
            give_back(t, node);
        } else {
            node_refit(node);
            memcpy(parent->box[idx[i - 1]], node->bbox, sizeof node->bbox);
        }
    }
    Node *root = path[0];
    node_refit(root);
    while (root->height > 1 && root->count == 1) {
        Node *child = (Node *)root->ptr[0];
        give_back(t, root);
        root = child;
    }
    if (root->count == 0 && root->height > 1) {
        give_back(t, root);
        root = take(t, 1);
    }
    t->root = root;
    /* Orphans were gathered bottom-up, so walking them backwards inserts higher ones first. */
    for (int i = norph - 1; i >= 0; i--) {
        /* Only with huge nodes can the up-front reservation (need_remove) fall short. */
        if (t->nspare < tree_height(t) + 2 && reserve(t, tree_height(t) + 2) < 0)
            Py_FatalError("out of memory while reinserting R-tree entries");
        insert_entry(t, list[i].b, list[i].ptr, list[i].target);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* result buffers */

typedef struct {
    PyObject **p;
    Py_ssize_t n, cap;
    PyObject *local[256];
} PtrBuf;

static void buf_init(PtrBuf *b)
{
    b->p = b->local;
    b->n = 0;
    b->cap = 256;
}

static int buf_grow(PtrBuf *b, Py_ssize_t extra)
{
    Py_ssize_t cap = b->cap;
    while (cap < b->n + extra) cap *= 2;
    PyObject **p;
    if (b->p == b->local) {
        p = PyMem_Malloc(sizeof(PyObject *) * (size_t)cap);
        if (p != NULL) memcpy(p, b->local, sizeof(PyObject *) * (size_t)b->n);
    } else {
        p = PyMem_Realloc(b->p, sizeof(PyObject *) * (size_t)cap);
    }
    if (p == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

static void buf_release(PtrBuf *b)
{
    for (Py_ssize_t i = 0; i < b->n; i++) Py_DECREF(b->p[i]);
    if (b->p != b->local) PyMem_Free(b->p);
    buf_init(b);
}

/* Turn the owned references in the buffer into a new list (the buffer is reset). */
static PyObject *buf_to_list(PtrBuf *b)
{
    PyObject *list = PyList_New(b->n);
    if (list == NULL) {
        buf_release(b);
        return NULL;
    }
    if (b->n) memcpy(((PyListObject *)list)->ob_item, b->p, sizeof(PyObject *) * (size_t)b->n);
    if (b->p != b->local) PyMem_Free(b->p);
    buf_init(b);
    return list;
}

/* Append (with a new reference) every item under `node`, in depth-first order. */
static int collect_all(const Node *node, PtrBuf *buf)
{
    if (node->height == 1) {
        if (buf->n + node->count > buf->cap && buf_grow(buf, node->count) < 0) return -1;
        PyObject **out = buf->p + buf->n;
        for (int i = 0; i < node->count; i++) {
            PyObject *o = (PyObject *)node->ptr[i];
            Py_INCREF(o);
            out[i] = o;
        }
        buf->n += node->count;
        return 0;
    }
    for (int i = 0; i < node->count; i++)
        if (collect_all((const Node *)node->ptr[i], buf) < 0) return -1;
    return 0;
}

static int search_node(const Node *node, const double *q, PtrBuf *buf)
{
    if (node->height == 1) {
        if (buf->n + node->count > buf->cap && buf_grow(buf, node->count) < 0) return -1;
        PyObject **out = buf->p;
        Py_ssize_t n = buf->n;
        for (int i = 0; i < node->count; i++) {
            const double *b = node->box[i];
            if (b[0] <= q[2] && b[1] <= q[3] && b[2] >= q[0] && b[3] >= q[1]) {
                PyObject *o = (PyObject *)node->ptr[i];
                Py_INCREF(o);
                out[n++] = o;
            }
        }
        buf->n = n;
        return 0;
    }
    for (int i = 0; i < node->count; i++) {
        const double *b = node->box[i];
        if (box_intersects(b, q)) {
            /* Wholly inside the query: take the subtree without further tests. */
            int r = box_within(b, q) ? collect_all((const Node *)node->ptr[i], buf)
                                     : search_node((const Node *)node->ptr[i], q, buf);
            if (r < 0) return -1;
        }
    }
    return 0;
}

static PyObject *search_box(TreeObject *t, const double *q)
{
    PtrBuf buf;
    buf_init(&buf);
    if (t->size && box_intersects(t->root->bbox, q) && search_node(t->root, q, &buf) < 0) {
        buf_release(&buf);
        return NULL;
    }
    return buf_to_list(&buf);
}

static int collides_node(const Node *node, const double *q)
{
    int leaf = node->height == 1;
    for (int i = 0; i < node->count; i++) {
        const double *b = node->box[i];
        if (box_intersects(b, q)) {
            if (leaf || box_within(b, q)) return 1;
            if (collides_node((const Node *)node->ptr[i], q)) return 1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* best-first kNN (Hjaltason and Samet; rbush-knn) */

typedef struct {
    double d;
    tie_t tie; /* depth-first path number: orders equal-distance items as all() does */
    void *ptr;
    int item;
} HEntry;

typedef struct {
    HEntry *e;
    Py_ssize_t n, cap;
    HEntry local[128];
} Heap;

static void heap_init(Heap *h)
{
    h->e = h->local;
    h->n = 0;
    h->cap = 128;
}

static void heap_free(Heap *h)
{
    if (h->e != h->local) PyMem_Free(h->e);
    heap_init(h);
}

/* At equal distance nodes come first, so that every item at that distance is in the heap
 * before any of them is emitted; items then come in path (depth-first) order. */
static inline int h_less(const HEntry *a, const HEntry *b)
{
    if (a->d != b->d) return a->d < b->d;
    if (a->item != b->item) return a->item < b->item;
    return a->tie < b->tie;
}

static int heap_push(Heap *h, double d, tie_t tie, void *ptr, int item)
{
    if (h->n == h->cap) {
        Py_ssize_t cap = h->cap * 2;
        HEntry *e;
        if (h->e == h->local) {
            e = PyMem_Malloc(sizeof(HEntry) * (size_t)cap);
            if (e != NULL) memcpy(e, h->local, sizeof(HEntry) * (size_t)h->n);
        } else {
            e = PyMem_Realloc(h->e, sizeof(HEntry) * (size_t)cap);
        }
        if (e == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        h->e = e;
        h->cap = cap;
    }
    HEntry v = {d, tie, ptr, item};
    Py_ssize_t i = h->n++;
    while (i > 0) {
        Py_ssize_t parent = (i - 1) / 2;
        if (!h_less(&v, &h->e[parent])) break;
        h->e[i] = h->e[parent];
        i = parent;
    }
    h->e[i] = v;
    return 0;
}

static HEntry heap_pop(Heap *h)
{
    HEntry top = h->e[0];
    HEntry last = h->e[--h->n];
    Py_ssize_t n = h->n, i = 0;
    for (;;) {
        Py_ssize_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && h_less(&h->e[c + 1], &h->e[c])) c++;
        if (!h_less(&h->e[c], &last)) break;
        h->e[i] = h->e[c];
        i = c;
    }
    if (n) h->e[i] = last;
    return top;
}

static PyObject *knn_point(TreeObject *t, double x, double y, Py_ssize_t k, double limit,
                           PyObject *predicate, Heap *h)
{
    PyObject *result = PyList_New(0);
    if (result == NULL || k == 0 || t->size == 0) return result;
    h->n = 0;
    const Node *node = t->root;
    tie_t key = 1, mult = (tie_t)t->max_entries + 1;
    if (predicate != NULL) t->busy++;
    for (;;) {
        tie_t base = key * mult;
        int leaf = node->height == 1;
        for (int i = 0; i < node->count; i++) {
            double d = sq_dist(node->box[i], x, y);
            if (d <= limit && heap_push(h, d, base + (tie_t)i, node->ptr[i], leaf) < 0)
                goto fail;
        }
        while (h->n && h->e[0].item) {
            PyObject *item = (PyObject *)heap_pop(h).ptr;
            if (predicate != NULL) {
                PyObject *r = PyObject_Vectorcall(predicate, &item, 1, NULL);
                if (r == NULL) goto fail;
                int ok = PyObject_IsTrue(r);
                Py_DECREF(r);
                if (ok < 0) goto fail;
                if (!ok) continue;
            }
            if (PyList_Append(result, item) < 0) goto fail;
            if (PyList_GET_SIZE(result) == k) goto done;
        }
        if (!h->n) goto done;
        HEntry next = heap_pop(h);
        node = (const Node *)next.ptr;
        key = next.tie;
    }
done:
    if (predicate != NULL) t->busy--;
    return result;
fail:
    if (predicate != NULL) t->busy--;
    Py_DECREF(result);
    return NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* snapshots and checks */

static PyObject *export_node(const Node *n)
{
    PyObject *kids = PyList_New(n->count);
    if (kids == NULL) return NULL;
    for (int i = 0; i < n->count; i++) {
        PyObject *kid = n->height == 1 ? PySequence_List((PyObject *)n->ptr[i])
                                       : export_node((const Node *)n->ptr[i]);
        if (kid == NULL) {
            Py_DECREF(kids);
            return NULL;
        }
        PyList_SET_ITEM(kids, i, kid);
    }
    return Py_BuildValue("[iddddN]", n->height, n->bbox[0], n->bbox[1], n->bbox[2], n->bbox[3],
                         kids);
}

static int bad_snapshot(const char *why)
{
    PyErr_Format(PyExc_ValueError, "malformed RTree snapshot: %s", why);
    return -1;
}

/* Build a node from its snapshot list [height, x0, y0, x1, y1, kids]; boxes are recomputed.
 * On error everything built so far is freed. */
static int import_node(TreeObject *t, PyObject *raw, int expect, Node **out, Py_ssize_t *items)
{
    if (!PyList_Check(raw) && !PyTuple_Check(raw)) return bad_snapshot("a node is a list");
    if (PySequence_Fast_GET_SIZE(raw) != 6) return bad_snapshot("a node has six fields");
    PyObject **f = PySequence_Fast_ITEMS(raw);
    long height = PyLong_AsLong(f[0]);
    if (height == -1 && PyErr_Occurred()) return -1;
    if (height < 1 || height >= MAX_HEIGHT || (expect && height != expect))
        return bad_snapshot("node heights are inconsistent");
    PyObject *kids = f[5];
    if (!PyList_Check(kids) && !PyTuple_Check(kids)) return bad_snapshot("children are a list");
    Py_ssize_t count = PySequence_Fast_GET_SIZE(kids);
    if (count > t->max_entries) return bad_snapshot("a node holds more than max_entries");
    if (count == 0 && expect) return bad_snapshot("an inner node has no children");
    Node *n = node_alloc(t->max_entries);
    if (n == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    n->height = (int)height;
    n->count = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *kid = PySequence_Fast_ITEMS(kids)[i];
        if (height == 1) {
            double b[4];
            PyObject *item = PySequence_Tuple(kid);
            if (item == NULL || parse_item(item, b) < 0) {
                Py_XDECREF(item);
                goto fail;
            }
            if (PyFloat_CheckExact(PyTuple_GET_ITEM(item, 0)) &&
                PyFloat_CheckExact(PyTuple_GET_ITEM(item, 1)) &&
                PyFloat_CheckExact(PyTuple_GET_ITEM(item, 2)) &&
                PyFloat_CheckExact(PyTuple_GET_ITEM(item, 3)))
                untrack_if_atomic(item, PyTuple_GET_ITEM(item, 4));
            node_append(n, b, item);
            (*items)++;
        } else {
            Node *child;
            if (import_node(t, kid, (int)height - 1, &child, items) < 0) goto fail;
            node_append(n, child->bbox, child);
        }
    }
    node_refit(n);
    *out = n;
    return 0;
fail:
    free_subtree(n, 1);
    return -1;
}

static void check_fail(const char *why, int *failed)
{
    if (!*failed) PyErr_Format(PyExc_AssertionError, "R-tree invariant broken: %s", why);
    *failed = 1;
}

/* Verify the invariants the Python tests cannot see through to_dict(). */
static Py_ssize_t check_node(const TreeObject *t, const Node *n, int is_root, int *failed)
{
    if (n->count > t->max_entries) check_fail("a node overflows", failed);
    if (!is_root && n->count < t->min_entries) check_fail("a node is underfull", failed);
    if (is_root && n->height > 1 && n->count < 2) check_fail("the root has one child", failed);
    double b[4];
    box_empty(b);
    for (int i = 0; i < n->count; i++) box_extend(b, n->box[i]);
    if (n->count && !box_equal(b, n->bbox))
        check_fail("a node's box is not the union of its entries", failed);
    if (n->height == 1) {
        for (int i = 0; i < n->count; i++) {
            double ib[4];
            PyObject *item = (PyObject *)n->ptr[i];
            for (int j = 0; j < 4; j++)
                if (as_double(PyTuple_GET_ITEM(item, j), &ib[j]) < 0) PyErr_Clear();
            if (!box_equal(ib, n->box[i]))
                check_fail("a stored item box differs from the item", failed);
        }
        return n->count;
    }
    Py_ssize_t total = 0;
    for (int i = 0; i < n->count; i++) {
        const Node *c = (const Node *)n->ptr[i];
        if (c->height != n->height - 1) check_fail("leaves are at different depths", failed);
        if (!box_equal(c->bbox, n->box[i]))
            check_fail("a parent's copy of a child's box is stale", failed);
        total += check_node(t, c, 0, failed);
    }
    return total;
}

/* ---------------------------------------------------------------------------------------- */
/* the Python type */

static int visit_items(const Node *n, visitproc visit, void *arg)
{
    if (n->height == 1) {
        for (int i = 0; i < n->count; i++) Py_VISIT((PyObject *)n->ptr[i]);
        return 0;
    }
    for (int i = 0; i < n->count; i++) {
        int r = visit_items((const Node *)n->ptr[i], visit, arg);
        if (r) return r;
    }
    return 0;
}

static int Tree_traverse(TreeObject *t, visitproc visit, void *arg)
{
    return t->root ? visit_items(t->root, visit, arg) : 0;
}

/* Detach everything, then release it (finalizers then see an empty, valid tree). */
static int Tree_clear_refs(TreeObject *t)
{
    Node *old = t->root;
    if (old == NULL || t->size == 0) return 0;
    if (reserve(t, 1) < 0) {
        /* No memory for an empty root: keep the tree as it is (only reachable from GC). */
        PyErr_Clear();
        return 0;
    }
    Py_ssize_t size = t->size;
    t->root = take(t, 1);
    t->size = 0;
    free_tree(old, size);
    trim_pool(t);
    return 0;
}

static void Tree_dealloc(TreeObject *t)
{
    PyObject_GC_UnTrack(t);
    Node *root = t->root;
    Py_ssize_t size = t->size;
    t->root = NULL;
    t->size = 0;
    if (root) free_tree(root, size);
    while (t->spare) {
        Node *n = t->spare;
        t->spare = n->ptr[0];
        PyMem_Free(n);
    }
    PyMem_Free(t->split_order);
    PyMem_Free(t->split_box);
    PyMem_Free(t->split_ptr);
    PyMem_Free(t->split_ent);
    Py_TYPE(t)->tp_free((PyObject *)t);
}

static int Tree_init(TreeObject *t, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"max_entries", NULL};
    int max_entries = 9;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|i", kwlist, &max_entries)) return -1;
    if (max_entries < 4 || max_entries > 100000) {
        PyErr_SetString(PyExc_ValueError, "max_entries must be between 4 and 100000");
        return -1;
    }
    if (t->root != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the tree is already initialised");
        return -1;
    }
    t->max_entries = max_entries;
    t->min_entries = (int)ceil(max_entries * 0.4);
    if (t->min_entries < 2) t->min_entries = 2;
    size_t cap = (size_t)max_entries + 2;
    t->split_order = PyMem_Malloc(sizeof(int) * 2 * cap);
    t->split_box = PyMem_Malloc(sizeof(double) * 16 * cap);
    t->split_ptr = PyMem_Malloc(sizeof(void *) * cap);
    t->split_ent = PyMem_Malloc(sizeof(double) * 4 * cap);
    if (!t->split_order || !t->split_box || !t->split_ptr || !t->split_ent) {
        PyErr_NoMemory();
        return -1;
    }
    Node *root = node_alloc(max_entries);
    if (root == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    root->height = 1;
    root->count = 0;
    box_empty(root->bbox);
    t->root = root;
    return 0;
}

static int ready(TreeObject *t)
{
    if (t->root == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the tree is not initialised");
        return -1;
    }
    return 0;
}

static Py_ssize_t Tree_len(TreeObject *t) { return t->size; }

static PyObject *Tree_insert(TreeObject *t, PyObject *item)
{
    double b[4];
    if (ready(t) < 0 || check_not_busy(t) < 0 || parse_item(item, b) < 0) return NULL;
    if (reserve(t, need_insert(t, 1)) < 0) return NULL;
    Py_INCREF(item);
    insert_entry(t, b, item, 1);
    t->size++;
    Py_RETURN_NONE;
}

static PyObject *Tree_remove(TreeObject *t, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "remove(item, equals)");
        return NULL;
    }
    if (ready(t) < 0 || check_not_busy(t) < 0) return NULL;
    PyObject *item = args[0], *equals = args[1] == Py_None ? NULL : args[1];
    double b[4];
    int ok = 0;
    if (PyTuple_Check(item) || PyList_Check(item)) {
        if (PySequence_Fast_GET_SIZE(item) >= 4) {
            ok = 1;
            for (int i = 0; i < 4 && ok; i++)
                if (as_double(PySequence_Fast_ITEMS(item)[i], &b[i]) < 0) ok = 0;
        }
    } else if (PySequence_Check(item)) {
        ok = 1;
        for (int i = 0; i < 4 && ok; i++) {
            PyObject *v = PySequence_GetItem(item, i);
            if (v == NULL || as_double(v, &b[i]) < 0) ok = 0;
            Py_XDECREF(v);
        }
    }
    if (!ok) {
        /* Not shaped like an item: it cannot be stored. */
        PyErr_Clear();
        Py_RETURN_FALSE;
    }
    if (t->size == 0) Py_RETURN_FALSE;
    if (reserve(t, need_remove(t)) < 0) return NULL;
    Orphan local[64], *orphans = local;
    size_t max_orphans = (size_t)tree_height(t) * (size_t)t->min_entries;
    if (max_orphans > 64 && (orphans = PyMem_Malloc(sizeof(Orphan) * max_orphans)) == NULL)
        return PyErr_NoMemory();
    Node *path[MAX_HEIGHT];
    int idx[MAX_HEIGHT], depth = 0, pos = 0;
    if (equals != NULL) t->busy++;
    Py_INCREF(item);
    int found = find_item(t, t->root, b, item, equals, path, idx, 0, &depth, &pos);
    Py_DECREF(item);
    if (equals != NULL) t->busy--;
    if (found <= 0) {
        if (orphans != local) PyMem_Free(orphans);
        if (found < 0) return NULL;
        Py_RETURN_FALSE;
    }
    Node *leaf = path[depth];
    PyObject *stored = (PyObject *)leaf->ptr[pos];
    node_delete(leaf, pos);
    t->size--;
    condense(t, path, idx, depth, orphans);
    if (orphans != local) PyMem_Free(orphans);
    trim_pool(t);
    Py_DECREF(stored);
    Py_RETURN_TRUE;
}

static PyObject *Tree_load(TreeObject *t, PyObject *seq)
{
    if (ready(t) < 0 || check_not_busy(t) < 0) return NULL;
    if (!PyList_Check(seq)) {
        PyErr_SetString(PyExc_TypeError, "load expects a list");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(seq), held = 0;
    if (n == 0) Py_RETURN_NONE;
    Elem *e = PyMem_Malloc(sizeof(Elem) * (size_t)n);
    if (e == NULL) return PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i >= PyList_GET_SIZE(seq)) {
            PyErr_SetString(PyExc_RuntimeError, "the list changed during load");
            goto fail;
        }
        PyObject *item = PyList_GET_ITEM(seq, i);
        Py_INCREF(item);
        e[held++].obj = item;
        if (parse_item(item, e[i].b) < 0) goto fail;
    }
    if (check_not_busy(t) < 0 || load_elems(t, e, n) < 0) goto fail;
    PyMem_Free(e);
    Py_RETURN_NONE;
fail:
    for (Py_ssize_t i = 0; i < held; i++) Py_DECREF(e[i].obj);
    PyMem_Free(e);
    return NULL;
}

static PyObject *Tree_load_arrays(TreeObject *t, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyList_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "load_arrays(boxes, ids: list)");
        return NULL;
    }
    if (ready(t) < 0 || check_not_busy(t) < 0) return NULL;
    Py_buffer view;
    Py_ssize_t n, held = 0;
    if (get_rows(args[0], &view, 4, &n) < 0) return NULL;
    PyObject *ids = args[1];
    Elem *e = NULL;
    if (PyList_GET_SIZE(ids) != n) {
        PyErr_Format(PyExc_ValueError, "%zd boxes but %zd ids", n, PyList_GET_SIZE(ids));
        goto fail;
    }
    if (n == 0) {
        PyBuffer_Release(&view);
        Py_RETURN_NONE;
    }
    const double *rows = (const double *)view.buf;
    e = PyMem_Malloc(sizeof(Elem) * (size_t)n);
    if (e == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        const double *r = rows + 4 * i;
        if (!box_valid(r)) {
            raise_invalid_box(r);
            goto fail;
        }
        PyObject *item = PyTuple_New(5);
        if (item == NULL) goto fail;
        e[held++].obj = item;
        for (int j = 0; j < 4; j++) {
            PyObject *v = PyFloat_FromDouble(r[j]);
            if (v == NULL) goto fail;
            PyTuple_SET_ITEM(item, j, v);
            e[i].b[j] = r[j];
        }
        PyObject *id = PyList_GET_ITEM(ids, i);
        Py_INCREF(id);
        PyTuple_SET_ITEM(item, 4, id);
        untrack_if_atomic(item, id);
    }
    if (check_not_busy(t) < 0 || load_elems(t, e, n) < 0) goto fail;
    PyMem_Free(e);
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
fail:
    for (Py_ssize_t i = 0; i < held; i++) Py_DECREF(e[i].obj);
    PyMem_Free(e);
    PyBuffer_Release(&view);
    return NULL;
}

static PyObject *Tree_search(TreeObject *t, PyObject *bbox)
{
    double q[4];
    if (ready(t) < 0 || parse_box(bbox, q) < 0) return NULL;
    return search_box(t, q);
}

static PyObject *Tree_collides(TreeObject *t, PyObject *bbox)
{
    double q[4];
    if (ready(t) < 0 || parse_box(bbox, q) < 0) return NULL;
    if (t->size && box_intersects(t->root->bbox, q) && collides_node(t->root, q)) Py_RETURN_TRUE;
    Py_RETURN_FALSE;
}

static PyObject *Tree_all(TreeObject *t, PyObject *Py_UNUSED(ignored))
{
    if (ready(t) < 0) return NULL;
    PtrBuf buf;
    buf_init(&buf);
    if (t->size && collect_all(t->root, &buf) < 0) {
        buf_release(&buf);
        return NULL;
    }
    return buf_to_list(&buf);
}

static PyObject *Tree_clear(TreeObject *t, PyObject *Py_UNUSED(ignored))
{
    if (ready(t) < 0 || check_not_busy(t) < 0) return NULL;
    Node *old = t->root;
    if (reserve(t, 1) < 0) return NULL;
    Py_ssize_t size = t->size;
    t->root = take(t, 1);
    t->size = 0;
    free_tree(old, size);
    trim_pool(t);
    Py_RETURN_NONE;
}

static PyObject *Tree_knn(TreeObject *t, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "knn(x, y, k, max_distance, predicate)");
        return NULL;
    }
    double x, y, limit;
    Py_ssize_t k;
    if (ready(t) < 0 || parse_point(args[0], args[1], &x, &y) < 0 ||
        parse_limit(args[3], &limit) < 0 || parse_k(args[2], &k) < 0)
        return NULL;
    Heap h;
    heap_init(&h);
    PyObject *r = knn_point(t, x, y, k, limit, args[4] == Py_None ? NULL : args[4], &h);
    heap_free(&h);
    return r;
}

/* Store a batch's per-query list, hidden from the cyclic GC until the batch is complete: a
 * collection triggered by the batch's own allocations would otherwise walk every result list
 * and touch every item found so far. */
static inline void batch_store(PyObject *out, Py_ssize_t i, PyObject *r)
{
    PyObject_GC_UnTrack(r);
    PyList_SET_ITEM(out, i, r);
}

/* Track the stored lists again (the batch is done) or, on error, drop the batch. */
static PyObject *batch_finish(PyObject *out, Py_ssize_t stored, int ok)
{
    for (Py_ssize_t i = 0; i < stored; i++) PyObject_GC_Track(PyList_GET_ITEM(out, i));
    if (!ok) Py_CLEAR(out);
    return out;
}

static PyObject *Tree_search_many(TreeObject *t, PyObject *arr)
{
    Py_buffer view;
    Py_ssize_t n;
    if (ready(t) < 0 || get_rows(arr, &view, 4, &n) < 0) return NULL;
    const double *rows = (const double *)view.buf;
    for (Py_ssize_t i = 0; i < n; i++)
        if (!box_valid(rows + 4 * i)) {
            raise_invalid_box(rows + 4 * i);
            PyBuffer_Release(&view);
            return NULL;
        }
    PyObject *out = PyList_New(n);
    Py_ssize_t i = 0;
    if (out != NULL) {
        PyObject *r = NULL;
        for (; i < n && (r = search_box(t, rows + 4 * i)) != NULL; i++) batch_store(out, i, r);
        out = batch_finish(out, i, i == n);
    }
    PyBuffer_Release(&view);
    return out;
}

static PyObject *Tree_knn_many(TreeObject *t, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "knn_many(points, k, max_distance, predicate)");
        return NULL;
    }
    Py_buffer view;
    Py_ssize_t n, k;
    double limit;
    if (ready(t) < 0 || get_rows(args[0], &view, 2, &n) < 0) return NULL;
    if (parse_limit(args[2], &limit) < 0 || parse_k(args[1], &k) < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    const double *pts = (const double *)view.buf;
    for (Py_ssize_t i = 0; i < n; i++)
        if (!isfinite(pts[2 * i]) || !isfinite(pts[2 * i + 1])) {
            double b[4] = {pts[2 * i], pts[2 * i + 1], pts[2 * i], pts[2 * i + 1]};
            raise_invalid_box(b);
            PyBuffer_Release(&view);
            return NULL;
        }
    PyObject *predicate = args[3] == Py_None ? NULL : args[3];
    Heap h;
    heap_init(&h);
    PyObject *out = PyList_New(n);
    Py_ssize_t i = 0;
    if (out != NULL) {
        PyObject *r = NULL;
        for (; i < n && (r = knn_point(t, pts[2 * i], pts[2 * i + 1], k, limit, predicate, &h));
             i++)
            batch_store(out, i, r);
        out = batch_finish(out, i, i == n);
    }
    heap_free(&h);
    PyBuffer_Release(&view);
    return out;
}

static PyObject *Tree_export(TreeObject *t, PyObject *Py_UNUSED(ignored))
{
    if (ready(t) < 0) return NULL;
    if (t->size == 0) Py_RETURN_NONE;
    return export_node(t->root);
}

static PyObject *Tree_restore(TreeObject *t, PyObject *raw)
{
    if (ready(t) < 0 || check_not_busy(t) < 0) return NULL;
    if (t->size) {
        PyErr_SetString(PyExc_RuntimeError, "restore needs an empty tree");
        return NULL;
    }
    Node *root;
    Py_ssize_t items = 0;
    if (import_node(t, raw, 0, &root, &items) < 0) return NULL;
    if (items == 0 || (root->height > 1 && root->count < 2)) {
        free_subtree(root, 1);
        bad_snapshot("the root must hold items and, above a leaf, two children");
        return NULL;
    }
    give_back(t, t->root);
    t->root = root;
    t->size = items;
    trim_pool(t);
    Py_RETURN_NONE;
}

static PyObject *Tree_check(TreeObject *t, PyObject *Py_UNUSED(ignored))
{
    if (ready(t) < 0) return NULL;
    int failed = 0;
    Py_ssize_t count = check_node(t, t->root, 1, &failed);
    if (!failed && count != t->size) check_fail("the size differs from the item count", &failed);
    if (failed) return NULL;
    Py_RETURN_NONE;
}

static PyObject *Tree_get_height(TreeObject *t, void *Py_UNUSED(closure))
{
    if (ready(t) < 0) return NULL;
    return PyLong_FromLong(t->root->height);
}

static PyObject *Tree_get_max_entries(TreeObject *t, void *Py_UNUSED(closure))
{
    return PyLong_FromLong(t->max_entries);
}

static PyMethodDef Tree_methods[] = {
    {"insert", (PyCFunction)Tree_insert, METH_O, "insert(item): add one item."},
    {"remove", (PyCFunction)(void (*)(void))Tree_remove, METH_FASTCALL,
     "remove(item, equals): remove one item by identity or equals(item, stored)."},
    {"load", (PyCFunction)Tree_load, METH_O, "load(items: list): OMT bulk load."},
    {"load_arrays", (PyCFunction)(void (*)(void))Tree_load_arrays, METH_FASTCALL,
     "load_arrays(boxes, ids): OMT bulk load of (*boxes[i], ids[i])."},
    {"search", (PyCFunction)Tree_search, METH_O, "search(bbox): items intersecting bbox."},
    {"collides", (PyCFunction)Tree_collides, METH_O, "collides(bbox): any item intersects."},
    {"all", (PyCFunction)Tree_all, METH_NOARGS, "all(): every item, depth-first."},
    {"clear", (PyCFunction)Tree_clear, METH_NOARGS, "clear(): remove every item."},
    {"knn", (PyCFunction)(void (*)(void))Tree_knn, METH_FASTCALL,
     "knn(x, y, k, max_distance, predicate): k nearest items, nearest first."},
    {"search_many", (PyCFunction)Tree_search_many, METH_O,
     "search_many(boxes): search for each row of a float64 (M, 4) array."},
    {"knn_many", (PyCFunction)(void (*)(void))Tree_knn_many, METH_FASTCALL,
     "knn_many(points, k, max_distance, predicate): knn for each row of an (M, 2) array."},
    {"export", (PyCFunction)Tree_export, METH_NOARGS,
     "export(): nested [height, x0, y0, x1, y1, children] lists (None if empty)."},
    {"restore", (PyCFunction)Tree_restore, METH_O, "restore(root): rebuild from export()."},
    {"check", (PyCFunction)Tree_check, METH_NOARGS,
     "check(): raise AssertionError unless every structural invariant holds."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Tree_getset[] = {
    {"height", (getter)Tree_get_height, NULL, "number of node levels", NULL},
    {"max_entries", (getter)Tree_get_max_entries, NULL, "node capacity", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PySequenceMethods Tree_as_sequence = {
    .sq_length = (lenfunc)Tree_len,
};

static PyTypeObject TreeType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "visualdm.spatial._rtree_core.Core",
    .tp_basicsize = sizeof(TreeObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Core(max_entries=9): the C R-tree behind visualdm.spatial.rtree.RTree.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Tree_init,
    .tp_dealloc = (destructor)Tree_dealloc,
    .tp_traverse = (traverseproc)Tree_traverse,
    .tp_clear = (inquiry)Tree_clear_refs,
    .tp_methods = Tree_methods,
    .tp_getset = Tree_getset,
    .tp_as_sequence = &Tree_as_sequence,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "visualdm.spatial._rtree_core",
    .m_doc = "C core of visualdm.spatial.rtree (an RBush-style R-tree).",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__rtree_core(void)
{
    if (PyType_Ready(&TreeType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    InvalidBoxError = PyErr_NewExceptionWithDoc(
        "visualdm.spatial.rtree.InvalidBoxError",
        "A box or point is NaN, infinite, inverted (min > max) or not shaped as required.",
        PyExc_ValueError, NULL);
    if (InvalidBoxError == NULL ||
        PyModule_AddObjectRef(m, "InvalidBoxError", InvalidBoxError) < 0 ||
        PyModule_AddObjectRef(m, "Core", (PyObject *)&TreeType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
