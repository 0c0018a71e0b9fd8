import Testing
@testable import DUKPT

@Suite("transactions a key has left")
struct TransactionsLeftTests {
    @Test("a fresh key: TDES 2^20 - 1 (1 048 575), AES 2 448 023 842; an exhausted key 0; the last counter 1")
    func whole() {
        #expect(DUKPTScheme.tdes.transactionsLeft(next: 1) == 1_048_575)
        #expect(DUKPTScheme.aes128.transactionsLeft(next: 1) == 2_448_023_842)
        #expect(DUKPTScheme.aes128.transactionsLeft(next: nil) == 0)
        #expect(DUKPTScheme.tdes.transactionsLeft(next: TDESDUKPT.lastCounter) == 1)
    }

    @Test("equal to walking the counter, over ranges of small counters")
    func againstWalking() {
        var r: UInt64 = 0x1234_5678
        for _ in 0..<200 {
            r = r &* 6_364_136_223_846_793_005 &+ 1
            let first = UInt32(r >> 40) % 5_000 + 1
            let last = first + UInt32(r >> 20 & 0xFFF)
            let k = Int(r >> 8 & 7) + 2
            var walked = 0
            var c: UInt32? = first.nonzeroBitCount <= k ? first : nextCounter(after: first, last: last, maximumOneBits: k)
            while let v = c { walked += 1; c = nextCounter(after: v, last: last, maximumOneBits: k) }
            #expect(countersLeft(from: first, last: last, maximumOneBits: k) == walked, "\(first)...\(last), \(k) ones")
        }
    }
}
