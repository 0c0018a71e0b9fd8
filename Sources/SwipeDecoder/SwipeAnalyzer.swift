import Secrets
import Magstripe

/// Decodes one segment of audio that the gate marked as activity: the front end measures and
/// cleans it (`SegmentConditioner`), a plain pass reads a clean swipe at once, otherwise the
/// candidate settings are tried in order (`CandidateSetting.all`), each read judged by the
/// acceptance rules (`Acceptance`), and the swipe is measured and diagnosed (`SwipeReport`).
final class SwipeAnalyzer {
    let sampleRate: Double
    let channel: Int
    let maskPolicy: MaskPolicy
    /// Receives one line per candidate tried (no card data), for `--trace` and the benchmark.
    var trace: ((String) -> Void)?
    /// Sees every candidate's read, clear text included (in-process only: for the benchmark's
    /// false-accept analysis). With `exhaustive`, every candidate is tried even after a read.
    var observer: ((Int, TrackRead) -> Void)?
    var exhaustive = false
    var keepTimeline = false
    var rules = AcceptanceRules.standard

    private let conditioner: SegmentConditioner
    private var clockOutput = BitClock.Output()

    init(sampleRate: Int, channel: Int, maskPolicy: MaskPolicy) {
        self.sampleRate = Double(sampleRate)
        self.channel = channel
        self.maskPolicy = maskPolicy
        conditioner = SegmentConditioner(sampleRate: Double(sampleRate))
    }

    /// Set by `analyze` when the segment it returned nil for was a noise burst.
    private(set) var noiseBurst: NoiseBurst?

    /// Work buffers for segments up to this long stay between segments (`SegmentConditioner`).
    static var keptSeconds: Double { SegmentConditioner.keptSeconds }
    /// `keptSeconds` at this sample rate (the decoder's segment buffer keeps as much).
    var keptSamples: Int { conditioner.keptSamples }
    /// Samples the work buffers hold room for now (tests).
    var workCapacity: Int { conditioner.workCapacity }

    /// Analyses `segment` (samples of one channel). `startTime` is the stream time of its first
    /// sample, `noiseRMS` the noise level before the swipe. Returns nil when the segment holds
    /// no sign of a swipe (a click, a burst of noise).
    /// `quietLead`: false for a segment that began inside a swipe (at the first sample of a
    /// stream), which has no noise before the swipe to measure.
    func analyze(_ segment: UnsafeBufferPointer<Float>, startTime: Double, noiseRMS: Double, quietLead: Bool = true) -> Swipe? {
        noiseBurst = nil
        guard segment.count >= 64 else { return nil }
        defer { conditioner.releaseLongSegment() }
        let levels = conditioner.prepare(segment, quietLead: quietLead)
        // A first look: the typical interval between transitions, from a plain pass.
        guard let typical = conditioner.typicalInterval() else { return nil }
        func report(_ attempt: Attempt, accepted: (TrackRead, SwipeDirection)?, failure: TrackRead?, tried: Int) -> Swipe? {
            switch SwipeReport.describe(segment: segment, startTime: startTime, noiseRMS: noiseRMS, attempt: attempt,
                                        accepted: accepted, failure: failure, tried: tried, levels: levels,
                                        sampleRate: sampleRate, keepTimeline: keepTimeline, quietLead: quietLead) {
            case .swipe(let swipe): return swipe
            case .noise(let burst):
                noiseBurst = burst
                return nil
            }
        }

        // A clean swipe already reads from the plain pass that measured the interval; what it
        // cannot settle on its own goes through the candidates. (Not in exhaustive mode, where
        // every candidate is to be seen.)
        if !exhaustive, let quick = plainRead(typical: typical) {
            return report(quick.attempt, accepted: (quick.read, quick.direction), failure: nil, tried: 1)
        }
        // The shortest read that may be accepted has 65 cells (start sentinel, ten characters,
        // end sentinel and LRC of five bits), each with at least one transition. A plain pass
        // that finds fewer saw the tail of a swipe, a click or a burst, not a card (noise and
        // doublets only add extrema to it): the candidates are not tried. Measured on the
        // benchmark grid (12 000 swipes, two seeds): not one read lost.
        // Whether it is reported at all (as a partial swipe, say) is the primary setting's call,
        // as when every candidate has failed.
        if !exhaustive && conditioner.transitions.count < Self.fewestPlainTransitions {
            let primary = CandidateSetting.all[0]
            let height = conditioner.condition(primary.frontEnd, typical: typical)
            let attempt = candidateAttempt(primary, index: 0, segment: segment, typical: typical, height: height)
            guard attempt.bits.count >= 20 else { return nil }
            let (read, direction) = judge(attempt, setting: primary, role: .primary)
            trace?("few plain transitions: primary candidate: transitions \(attempt.transitions.count) bits \(attempt.bits.count) → \(read.status.code)")
            // The primary setting may still read what the plain pass could not follow (a
            // segment without a noise lead): a read it accepts is taken as in the loop below,
            // and anything else is a failure without text (never an `ok` status without one).
            if read.isOK { return report(attempt, accepted: (read, direction), failure: nil, tried: 1) }
            if typical < Self.sequenceInterval, let (sequence, read, direction) = sequenceRead(agreeing: SecondOpinions()) {
                return report(sequence, accepted: (read, direction), failure: nil, tried: 2)
            }
            return report(attempt, accepted: nil, failure: Acceptance.scrubbed(read), tried: 1)
        }

        var best: Attempt?
        var accepted: (read: TrackRead, attempt: Attempt, direction: SwipeDirection)?
        // Reads that need a second opinion, by text: the front end that produced each.
        var unconfirmed = SecondOpinions()
        var firstFailure: (TrackRead, Attempt)?
        var tried = 0
        var lastFront: CandidateSetting.FrontEnd?
        var height: Float = 0

        candidateLoop: for (index, setting) in CandidateSetting.all.enumerated() {
            tried += 1
            if lastFront != setting.frontEnd {
                height = conditioner.condition(setting.frontEnd, typical: typical)
                lastFront = setting.frontEnd
            }
            let attempt = candidateAttempt(setting, index: index, segment: segment, typical: typical, height: height)
            if index == 0 { best = attempt }
            guard attempt.bits.count >= 20 else {
                trace?("candidate \(index): transitions \(attempt.transitions.count) bits \(attempt.bits.count): no clock")
                continue
            }

            let (read, direction) = judge(attempt, setting: setting, role: CandidateRole(index: index))
            trace?("candidate \(index) \(setting.front) s=\(setting.smoothing) th=\(setting.threshold) g=\(setting.clockGain) back=\(setting.backward): transitions \(attempt.transitions.count) bits \(attempt.bits.count) repairs \(attempt.repairs) → \(read.format.map { "\($0)" } ?? "-") \(read.status.code) weakest \(read.weakest ?? -1) corrections \(read.corrections)")
            observer?(index, read)
            if read.isOK {
                if accepted == nil { accepted = (read, attempt, direction) }
                if exhaustive { continue } else { break candidateLoop }
            }
            if case .failed(.unconfirmed) = read.status, let text = read.text {
                // A read that needs a second opinion is accepted once a different front end
                // (other filtering, so other transitions) gives the same text.
                if unconfirmed.confirm(text, by: setting.frontEnd, corrected: read.corrections > 0) {
                    var confirmed = read
                    confirmed.status = .ok
                    if accepted == nil { accepted = (confirmed, attempt, direction) }
                    if exhaustive { continue } else { break candidateLoop }
                }
            }
            if firstFailure == nil { firstFailure = (Acceptance.scrubbed(read), attempt) }
        }

        if accepted == nil && typical < Self.sequenceInterval, let (sequence, read, direction) = sequenceRead(agreeing: unconfirmed) {
            tried += 1
            accepted = (read, sequence, direction)
        }
        let reference = accepted?.attempt ?? firstFailure?.1 ?? best
        guard let reference, reference.bits.count >= 20 || accepted != nil else { return nil }
        return report(reference, accepted: accepted.map { ($0.read, $0.direction) }, failure: firstFailure?.0,
                      tried: tried)
    }

    /// Transitions closer than this (samples, the plain pass's typical interval) mark a swipe the
    /// picker may not resolve: below about 3 samples per half-cell the sequence detector is
    /// tried when every setting failed.
    static let sequenceInterval = 6.0

    /// The sequence detector over the segment's clean samples: its read when the acceptance
    /// rules take it (a read that needs a second opinion, when a setting's front end gave the
    /// same text).
    private func sequenceRead(agreeing unconfirmed: SecondOpinions) -> (Attempt, TrackRead, SwipeDirection)? {
        var unconfirmed = unconfirmed
        guard let attempt = SequenceDetector.detect(conditioner.clean) else {
            trace?("sequence detector: no training stretch")
            return nil
        }
        var (read, direction) = judge(attempt, setting: CandidateSetting.all[0], role: .sequence)
        trace?("sequence detector: bits \(attempt.bits.count) → \(read.format.map { "\($0)" } ?? "-") \(read.status.code) weakest \(read.weakest ?? -1)")
        observer?(attempt.setting, read)
        if read.isUnconfirmed, let text = read.text, unconfirmed.confirm(text, by: nil, corrected: read.corrections > 0) {
            read.status = .ok
        }
        return read.isOK ? (attempt, read, direction) : nil
    }

    /// The lattice over the plain pass's transitions (those `typicalInterval` found), judged
    /// strictly: returned only for a read without correction (and, without payment structure,
    /// without a single doubtful bit).
    private func plainRead(typical: Double) -> (read: TrackRead, attempt: Attempt, direction: SwipeDirection)? {
        let primary = CandidateSetting.all[0]
        let attempt = clock(conditioner.transitions, setting: primary, index: 0, backward: false,
                            minimumHeight: 0.35 * conditioner.segmentHeight)
        guard attempt.bits.count >= 20 else { return nil }
        let (read, direction) = judge(attempt, setting: primary, role: .plainPass)
        trace?("plain pass: transitions \(attempt.transitions.count) bits \(attempt.bits.count) → \(read.status.code)")
        guard read.isOK, read.corrections == 0 else { return nil }
        return (read, attempt, direction)
    }

    /// One candidate on the segment its front end conditioned: its transitions, then the clock.
    private func candidateAttempt(_ setting: CandidateSetting, index: Int, segment: UnsafeBufferPointer<Float>,
                                  typical: Double, height: Float) -> Attempt {
        conditioner.detect(threshold: setting.threshold, typical: typical, height: height, segment: segment)
        return clock(conditioner.transitions, setting: setting, index: index, backward: setting.backward,
                     minimumHeight: 0.35 * height)
    }

    /// The bit clock over `transitions`, packaged as an attempt of candidate `index`.
    private func clock(_ transitions: [FluxTransition], setting: CandidateSetting, index: Int, backward: Bool,
                       minimumHeight: Float) -> Attempt {
        BitClock(gain: setting.clockGain, minimumHeight: minimumHeight).run(transitions, backward: backward, into: &clockOutput)
        let cells = max(1, clockOutput.bits.count)
        return Attempt(setting: index, bits: clockOutput.bits, confidence: clockOutput.confidence,
                       repairs: clockOutput.repairs, bridged: clockOutput.bridged, periods: clockOutput.periods,
                       jitter: (clockOutput.squaredError / Double(cells)).squareRoot(),
                       firstPosition: clockOutput.firstPosition, lastPosition: clockOutput.lastPosition,
                       transitions: transitions, backward: backward)
    }

    private func judge(_ attempt: Attempt, setting: CandidateSetting, role: CandidateRole) -> (TrackRead, SwipeDirection) {
        Acceptance.judge(attempt, setting: setting, role: role, rules: rules, maskPolicy: maskPolicy, channel: channel,
                         sampleRate: sampleRate)
    }

    /// Fewer transitions than this in the plain pass: not worth the candidates (see `analyze`):
    /// the cells of the shortest acceptable read, 13 characters of 5 bits.
    static let fewestPlainTransitions = (SwipeDecoder.minimumDataCharacters + 3) * 5
}

/// Reads that need a second opinion (`TrackRead.isUnconfirmed`), by text: which front ends gave
/// each (nil: the sequence detector), with and without a correction.
struct SecondOpinions {
    private var clean: [SecretText: Set<CandidateSetting.FrontEnd?>] = [:]
    private var corrected: [SecretText: Set<CandidateSetting.FrontEnd?>] = [:]

    /// Records a read of `text` by `frontEnd`; whether it confirms an earlier one: a different
    /// front end gave the same text, and the two were not both corrected. Damage written on
    /// the stripe (a bit dropped near the end) reads the same through every front end, so two
    /// reads "corrected" into one text are one opinion, not two: over 100 000 false-accept
    /// trials (posmini-bench, seed 2026) the only false accepts were such pairs.
    mutating func confirm(_ text: SecretText, by frontEnd: CandidateSetting.FrontEnd?, corrected isCorrected: Bool) -> Bool {
        let others: (Set<CandidateSetting.FrontEnd?>?) -> Bool = { set in set.map { !$0.subtracting([frontEnd]).isEmpty } ?? false }
        let confirmed = others(clean[text]) || (!isCorrected && others(corrected[text]))
        if isCorrected { corrected[text, default: []].insert(frontEnd) } else { clean[text, default: []].insert(frontEnd) }
        return confirmed
    }
}
