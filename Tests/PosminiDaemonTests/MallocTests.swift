import CPosix
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The daemon fixes malloc's thresholds at start so that large blocks keep being mapped on their
/// own after one has been freed (glibc would otherwise raise the threshold to that block's size
/// and serve the next ones from a thread's arena, whose free top malloc_trim leaves resident).
@Suite("malloc thresholds")
struct MallocTests {
    /// Whether glibc mapped the block on its own: the IS_MMAPPED bit (2) of the size word just
    /// before the block.
    static func isMapped(_ block: UnsafeMutableRawPointer) -> Bool {
        (block - MemoryLayout<Int>.size).load(as: Int.self) & 2 != 0
    }

    @Test("after a large block is freed, the next one above 128 KiB is still mapped on its own, and freeing it unmaps it")
    func thresholdsStayFixed() throws {
        #expect(posmini_fix_malloc_thresholds() == 1)
        let large = try #require(malloc(1 << 20))
        #expect(Self.isMapped(large))
        free(large)
        // Without fixed thresholds glibc would now serve blocks up to 1 MiB from the arena.
        let next = try #require(malloc(256 << 10))
        #expect(Self.isMapped(next), "a 256 KiB block came from an arena after a 1 MiB block was freed")
        free(next)
    }

    @Test("a block under the threshold still comes from an arena")
    func smallBlocksFromArena() throws {
        #expect(posmini_fix_malloc_thresholds() == 1)
        let small = try #require(malloc(64 << 10))
        #expect(!Self.isMapped(small))
        free(small)
    }
}
