"""The matcher: an immutable, exact spatial index of a program's zones (`index.ZoneIndex`),
built on an adaptive grid (`grid`, `cover`, `polycover`) with vectorised kernels
(`kernels`) and checked against a brute-force reference (`brute`).

May import: numpy, shapely, the standard library and `geo.zones`. Nothing else of the project.
"""
