import CPosix
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Whether blocks come from glibc's malloc: AddressSanitizer and ThreadSanitizer bring
/// allocators of their own, with neither these thresholds nor glibc's block headers.
private let glibcMalloc: Bool = {
    let sanitizerEntries: [String] = ["__asan_init", "__tsan_init"]
    return sanitizerEntries.allSatisfy { dlsym(nil, $0) == nil } && getenv("ASAN_OPTIONS") == nil && getenv("TSAN_OPTIONS") == nil
}()

/// The daemon fixes malloc's thresholds at start so that large blocks keep being mapped on their
/// own after one has been freed (glibc would otherwise raise the threshold to that block's size
/// and serve the next ones from a thread's arena, whose free top malloc_trim leaves resident).
/// Each case runs in a process of its own (an exit test): a large block is mapped only when no
/// free space in the arena can hold it, and the test process's arenas hold whatever the other
/// tests left.
@Suite("malloc thresholds", .enabled(if: glibcMalloc, "a sanitizer's allocator stands in for glibc's malloc"))
struct MallocTests {
    /// Whether glibc mapped the block on its own: the IS_MMAPPED bit (2) of the size word just
    /// before the block.
    static func isMapped(_ block: UnsafeMutableRawPointer) -> Bool {
        (block - MemoryLayout<Int>.size).load(as: Int.self) & 2 != 0
    }

    @Test("after a large block is freed, the next one above 128 KiB is still mapped on its own")
    func thresholdsStayFixed() async {
        await #expect(processExitsWith: .success) {
            guard posmini_fix_malloc_thresholds() == 1, let large = malloc(1 << 20), MallocTests.isMapped(large) else { exit(2) }
            free(large)
            // Without fixed thresholds glibc would now serve blocks up to 1 MiB from the arena.
            guard let next = malloc(256 << 10) else { exit(2) }
            exit(MallocTests.isMapped(next) ? 0 : 1)
        }
    }

    @Test("a block under the threshold still comes from an arena")
    func smallBlocksFromArena() async {
        await #expect(processExitsWith: .success) {
            guard posmini_fix_malloc_thresholds() == 1, let small = malloc(64 << 10) else { exit(2) }
            exit(MallocTests.isMapped(small) ? 1 : 0)
        }
    }
}
