"""Build hook for the one compiled part of visualdm: the R-tree's C core.

Everything else about the package is declared in pyproject.toml; setuptools reads this file
only for `ext_modules`, so that `uv sync` (editable or not) compiles the extension.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "visualdm.spatial._rtree_core",
            sources=["src/visualdm/spatial/_rtree_core.c"],
            extra_compile_args=["-O3", "-Wall", "-Wextra", "-Wno-missing-field-initializers"],
        )
    ]
)
