/* The driver is in compiler-rt; this target only carries its declaration. */
