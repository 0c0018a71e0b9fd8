/// A segment that opened the gate but holds nothing a card made: a plug click, a knock, a
/// level step, a burst of noise, a tone. It gives no swipe object (a POS app would tell the
/// merchant to swipe again before a card was touched); the decoder counts it instead.
///
/// The line is drawn only for segments where no track read and no track format was found (a
/// failed ISO read is always a swipe). Everything a hand does with a card leaves a run of
/// clocking transitions: a stripe starts and ends with clocking zeros, one transition per cell
/// at a steady interval, with a pulse height proportional to the card's speed (so height ×
/// interval stays constant as the hand speeds up or slows down). A segment is noise when its
/// best clock shows none of that:
/// - `noClock`: more than `transitionsPerCell` transitions per cell over the cells the clock
///   followed (F2F has one or two: the clock bridged noise, it did not follow cells);
/// - `noClockRun`: no `clockRun` consecutive intervals each within `runTolerance` of the one
///   before (a card's clocking zeros give dozens);
/// - `ringing`: at a steady interval (the last quarter's median within `runTolerance` of the
///   first quarter's), the pulse strength (height × interval) of the last quarter of the
///   clocked transitions is below `ringingDecay` of the first quarter's, the loudest pulse in
///   the first quarter: a circuit ringing down at its own frequency, not a card slowing down
///   (whose pulses weaken as their intervals grow).
/// - `tone`: more cells of one bit in a row than a stripe holds (`SwipeLimits.stripeCells`):
///   a steady tone (a whistle, a power supply's interference) is a run of zeros, or of ones, as
///   long as it lasts, while a card's longest run (a blank but clocked track) ends with the card.
/// The first two apply only where the transitions are resolvable (at least
/// `SwipeLimits.minimumSamplesPerHalfCell` samples per half-cell): below that a swipe too fast
/// for the rate looks no better than noise and stays a swipe (`tooFast`); so does a burst of
/// white noise. A steady tone has a clock: it stays a swipe (`notAMagstripe`) when no format is
/// found.
public struct NoiseBurst: Sendable, Hashable, CustomStringConvertible {
    public enum Reason: String, Sendable, Hashable, CaseIterable {
        /// `noSwipe`: the analysis found no clock to follow at all (a step, a knock).
        case noSwipe, noClock, noClockRun, ringing, tone
    }

    public var reason: Reason
    /// Stream seconds.
    public var start: Double
    public var duration: Double
    /// Nil when the analysis stopped before measuring it.
    public var peakDBFS: Double?

    public init(reason: Reason, start: Double, duration: Double, peakDBFS: Double?) {
        self.reason = reason
        self.start = start
        self.duration = duration
        self.peakDBFS = peakDBFS
    }

    public var description: String {
        "noise burst (\(reason.rawValue)) at \(Int((start * 1000).rounded())) ms, \(Int((duration * 1000).rounded())) ms long"
            + (peakDBFS.map { ", peak \(Int($0.rounded())) dBFS" } ?? "")
    }

    /// F2F: one transition per zero cell, two per one cell.
    static let transitionsPerCell = 3.0
    static let clockRun = 6
    static let runTolerance = 0.3
    static let ringingDecay = 1.0 / 4

    /// Why the segment is noise, or nil when it may be a card. `transitions` are the clocked
    /// attempt's (any order); `first`/`last` the span the clock followed, in the same positions.
    static func classify(transitions: [FluxTransition], first: Double, last: Double, bits: [UInt8],
                         minimumSamplesPerHalfCell: Double) -> Reason? {
        guard !bits.isEmpty else { return .noClock }
        var same = 1
        for k in bits.indices.dropFirst() {
            same = bits[k] == bits[k - 1] ? same + 1 : 1
            if same > SwipeLimits.stripeCells { return .tone }
        }
        let inSpan = transitions.filter { $0.position >= first - 0.5 && $0.position <= last + 0.5 }
            .sorted { $0.position < $1.position }
        guard inSpan.count >= 8 else { return nil }

        // Intervals between neighbouring transitions; two intervals are alike within `runTolerance`.
        let intervals = (1..<inSpan.count).map { inSpan[$0].position - inSpan[$0 - 1].position }
        func alike(_ a: Double, _ b: Double) -> Bool { abs(b - a) <= runTolerance * max(a, b) }

        // Below that many samples per half-cell the transitions cannot be picked one by one: a
        // swipe too fast for the rate looks no better than noise, and must stay a swipe (`tooFast`).
        if minimumSamplesPerHalfCell >= SwipeLimits.minimumSamplesPerHalfCell {
            if Double(inSpan.count) > transitionsPerCell * Double(bits.count) { return .noClock }
            var run = 1, longest = 1
            for k in 1..<intervals.count {
                run = alike(intervals[k - 1], intervals[k]) ? run + 1 : 1
                longest = max(longest, run)
            }
            if longest < clockRun { return .noClockRun }
        }

        // The first and the last quarter of the intervals, and of the strengths (height × the
        // interval to the next transition), by their medians.
        let n = intervals.count
        let quarter = max(2, n / 4)
        func median(_ values: some Sequence<Double>) -> Double {
            var v = Array(values)
            return selectKth(&v, v.count / 2)
        }
        let strength = (0..<n).map { Double(inSpan[$0].amplitude) * intervals[$0] }
        var loudest = 0
        for k in 0..<inSpan.count where inSpan[k].amplitude > inSpan[loudest].amplitude { loudest = k }
        if loudest < inSpan.count / 4
            && alike(median(intervals[0..<quarter]), median(intervals[(n - quarter)..<n]))
            && median(strength[(n - quarter)..<n]) < ringingDecay * median(strength[0..<quarter]) {
            return .ringing
        }
        return nil
    }
}
