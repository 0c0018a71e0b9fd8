import Testing
@testable import SwipeDecoder

/// The clock's acquisition (the first run of evenly spaced strong transitions) is a one-pass scan
/// that refuses most windows before sorting them; it must pick exactly the window the plain
/// definition picks: the first whose eight intervals all lie within (0.75, 1.3) × their median.
@Suite("bit clock acquisition matches its definition")
struct BitClockTests {
    /// The definition, window by window.
    static func reference(_ t: [FluxTransition], from: Int, run: Int = 8, minimumHeight: Float) -> (start: Int, period: Double)? {
        guard t.count >= run + 2 else { return nil }
        var s = from
        while s + run < t.count {
            if (0...run).allSatisfy({ t[s + $0].amplitude >= minimumHeight }) {
                let sorted = (0..<run).map { t[s + $0 + 1].position - t[s + $0].position }.sorted()
                let median = sorted[run / 2]
                if median > 0, sorted[0] > 0.75 * median, sorted[run - 1] < 1.3 * median { return (s, median) }
            }
            s += 1
        }
        return nil
    }

    /// Transitions with intervals `base × (1 ± jitter)`, amplitudes weak with probability
    /// `weak`, and now and then a duplicate position or a long pause.
    static func transitions(_ count: Int, base: Double, jitter: Double, weak: Double, random: inout TestRandom) -> [FluxTransition] {
        var position = 10.0
        var out: [FluxTransition] = []
        for k in 0..<count {
            let u = Double(random.next() >> 11) / Double(1 << 53)
            let v = Double(random.next() >> 11) / Double(1 << 53)
            switch random.next() % 40 {
            case 0: break                                   // the same position twice
            case 1: position += base * 3                    // a pause
            default: position += base * (1 + jitter * (2 * u - 1))
            }
            out.append(FluxTransition(position: position, amplitude: v < weak ? 0.1 : 0.5 + Float(v), polarity: k % 2 == 0 ? 1 : -1))
        }
        return out
    }

    @Test("random transitions, from noise to clean clocking: the same window and period", arguments: [0.0, 0.2, 0.45, 0.9, 2.0])
    func matchesReference(jitter: Double) {
        var random = TestRandom(seed: UInt64(jitter * 1_000) + 5)
        var found = 0, absent = 0
        for trial in 0..<400 {
            let t = Self.transitions(Int(random.next() % 60), base: 20, jitter: jitter, weak: trial % 3 == 0 ? 0.05 : 0, random: &random)
            let from = t.isEmpty ? 0 : Int(random.next() % UInt64(max(1, t.count / 3)))
            let fast = BitClock.acquire(t, from: from, minimumHeight: 0.3)
            let plain = Self.reference(t, from: from, minimumHeight: 0.3)
            #expect(fast?.start == plain?.start && fast?.period == plain?.period, "trial \(trial): \(String(describing: fast)) against \(String(describing: plain))")
            if plain == nil { absent += 1 } else { found += 1 }
        }
        // Both outcomes are exercised where they can be.
        if jitter <= 0.2 { #expect(found > 100) }
        if jitter >= 0.9 { #expect(absent > 100) }
    }

    @Test("a weak transition, a repeated position or an uneven interval inside every window: no clock")
    func refused() {
        let even = (0..<20).map { FluxTransition(position: Double($0) * 20, amplitude: 1, polarity: $0 % 2 == 0 ? 1 : -1) }
        #expect(BitClock.acquire(even, from: 0, minimumHeight: 0.5)?.start == 0)
        #expect(BitClock.acquire(even, from: 5, minimumHeight: 0.5)?.start == 5)
        var weak = even
        for k in stride(from: 4, to: 20, by: 8) { weak[k].amplitude = 0.2 }
        #expect(BitClock.acquire(weak, from: 0, minimumHeight: 0.5) == nil)
        var repeated = even
        for k in stride(from: 4, to: 20, by: 8) { repeated[k].position = repeated[k - 1].position }
        #expect(BitClock.acquire(repeated, from: 0, minimumHeight: 0.5) == nil)
        var uneven = even
        for k in stride(from: 4, to: 20, by: 7) { for j in k..<20 { uneven[j].position += 20 } }
        #expect(BitClock.acquire(uneven, from: 0, minimumHeight: 0.5) == nil)
        #expect(Self.reference(uneven, from: 0, minimumHeight: 0.5) == nil)
    }
}
