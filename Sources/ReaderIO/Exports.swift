// The system helpers (files, streams, threads) moved to PosminiSystem, which the tools use
// without the hardware edge; everything that imports ReaderIO still sees them.
@_exported public import PosminiSystem
