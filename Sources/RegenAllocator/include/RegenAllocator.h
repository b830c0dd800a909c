// RegenAllocator has no API: linking it gives the regen executable its allocator and the
// allocator's settings (allocator.c).
