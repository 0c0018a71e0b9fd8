import Secrets
import Magstripe

/// The limits a read must meet to be taken, as one value.
struct AcceptanceRules: Sendable, Hashable {
    /// A bit decided with less confidence than this is doubtful.
    var weakBit: Float = 0.25
    /// Doubtful bits a read may hold besides the one correction flipped.
    var allowedWeakBits = 1
    /// Correction may only flip a bit the clock was unsure of.
    var correctableBit: Float = 0.45
    /// The shortest read taken: data characters between the sentinels.
    var minimumDataCharacters = SwipeDecoder.minimumDataCharacters

    static let standard = AcceptanceRules()
}

/// Whether a candidate's bits hold a track that may be taken: a pure function of the bits, the
/// clock's confidence in them, which pass they came from and the rules.
enum Acceptance {
    /// Reads the bits as each format in both directions and applies the acceptance rules.
    /// Returns the read to report: an accepted or unconfirmed one when there is one, otherwise
    /// the most telling failure (one that found a track format before one that did not).
    static func judge(
        _ attempt: Attempt, setting: CandidateSetting, role: CandidateRole, rules: AcceptanceRules,
        maskPolicy: MaskPolicy, channel: Int, sampleRate: Double
    ) -> (TrackRead, SwipeDirection) {
        var failure: TrackRead?
        // 5-bit tracks are read with Track 3's capacity; `accept` names Track 2 when it fits.
        for bitFormat in [TrackFormat.track1, .track3] {
            let result = TrackDecoding.decodeEitherDirection(attempt.bits, format: bitFormat)
            switch result {
            case .failure(let error):
                let read = TrackRead(format: error == .noStartSentinel ? nil : bitFormat, status: .failed(.read(error)),
                                     text: nil, content: nil, corrections: 0, masked: nil, channel: channel)
                if failure == nil || failure?.format == nil { failure = read }
            case .success(let decoded):
                var direction = decoded.direction
                if setting.backward { direction = direction == .forward ? .reverse : .forward }
                let read = accept(decoded, attempt: attempt, role: role, rules: rules, maskPolicy: maskPolicy, channel: channel,
                                  sampleRate: sampleRate)
                if read.isOK || failure == nil || failure?.format == nil || read.isUnconfirmed {
                    if read.isOK || read.isUnconfirmed { return (read, direction) }
                    failure = read
                }
            }
        }
        return (failure!, .forward)
    }

    /// Track 2 or Track 3 for a read in the 5-bit format (read with Track 3's capacity): by its
    /// length, else by which density puts the swipe's mean speed (from the clock's mean cell
    /// period) within `SwipeLimits.plausibleSpeed`, else Track 2 assumed.
    static func density(_ decoded: DecodedTrack, periods: [Float], sampleRate: Double) -> (TrackFormat, DensityBasis?) {
        guard decoded.format == .track3 else { return (decoded.format, nil) }
        if decoded.text.count + 1 > TrackFormat.track2.maximumCharacters { return (.track3, .characters) }
        guard !periods.isEmpty else { return (.track2, .assumed) }
        var sum = 0.0
        for p in periods { sum += Double(p) }
        let cellSeconds = sum / Double(periods.count) / sampleRate
        func plausible(_ format: TrackFormat) -> Bool {
            SwipeLimits.plausibleSpeed.contains(format.cellLengthMillimetres / 10 / cellSeconds)
        }
        switch (plausible(.track2), plausible(.track3)) {
        case (true, false): return (.track2, .speed)
        case (false, true): return (.track3, .speed)
        default: return (.track2, .assumed)
        }
    }

    /// The acceptance rules: long enough, checks passed, and either card structure or the
    /// primary setting's say-so.
    static func accept(
        _ decoded: DecodedTrack, attempt: Attempt, role: CandidateRole, rules: AcceptanceRules,
        maskPolicy: MaskPolicy, channel: Int, sampleRate: Double
    ) -> TrackRead {
        let length = decoded.dataLength
        // How sure the clock was of the bits inside the frame, and of the bit correction flipped.
        let n = attempt.bits.count
        let toClock: (Int) -> Int = { decoded.direction == .forward ? $0 : n - 1 - $0 }
        var correctedBit = -1
        var correctedConfidence: Float?
        if let fix = decoded.corrections.first {
            correctedBit = toClock(decoded.startBit + fix.characterIndex * decoded.format.characterWidth + fix.bit)
            correctedConfidence = attempt.confidence[correctedBit]
        }
        var weakest: Float = 1
        var weakCount = 0
        var guesses = 0
        for j in decoded.startBit..<decoded.endBit {
            let bit = toClock(j)
            let c = attempt.confidence[bit]
            weakest = min(weakest, c)
            guard bit != correctedBit else { continue }
            if c < rules.weakBit { weakCount += 1 }
            if c <= 0 { guesses += 1 }
        }
        let (format, basis) = density(decoded, periods: attempt.periods, sampleRate: sampleRate)
        var read = TrackRead(format: format, status: .ok, text: nil, content: nil,
                             corrections: decoded.corrections.count, masked: nil, channel: channel)
        read.densityBasis = basis
        read.weakest = weakest
        read.weakBits = weakCount
        read.correctedConfidence = correctedConfidence
        read.text = decoded.text
        // `startBit` counts in the decoder's reading order, which runs against time when exactly
        // one of the two (the reading, the clock) ran backwards.
        read.frame = TrackFrame(start: decoded.startBit, characters: decoded.text.count,
                                width: decoded.format.characterWidth, cellCount: n,
                                againstTime: (decoded.direction == .reverse) != attempt.backward)
        guard length >= rules.minimumDataCharacters else {
            read.status = .failed(.tooShort(length))
            return read
        }
        // A clock slip leaves its mark on the timing: reads that pass parity and LRC by chance
        // carry several doubtful bit decisions, or a correction of a bit the clock was sure of.
        // Correction may only flip a bit the clock was unsure of: a bit written wrong on the
        // card (or shifted by a slip in the recording) reads with clean timing, and flipping it
        // to satisfy parity and LRC would be guessing.
        // Correction is the primary setting's alone (each fallback setting is one more chance
        // for a damaged stripe to be "corrected" into other text), of a bit that was measured
        // but doubtful (not a bridged guess), with no other bit in doubt: a doubtful bit beside
        // a corrected one is two errors, which correction must never paper over.
        let allowedWeak = correctedConfidence == nil ? rules.allowedWeakBits : 0
        let correctable = correctedConfidence.map { $0 > 0 && $0 <= rules.correctableBit } ?? true
        if weakCount > allowedWeak || guesses > 0 || !correctable {
            read.status = .failed(.doubtful)
            return read
        }
        do {
            let content = try TrackContent.parse(decoded.text, format: format)
            read.content = content
            read.masked = content.masked(maskPolicy)
            // A track without payment structure stands on the primary setting's word, or on the
            // plain pass's when not a single bit of it was in doubt.
            let spotlessPlain = role == .plainPass && weakCount == 0 && correctedConfidence == nil
            if case .nonPayment = content, role != .primary, !spotlessPlain {
                read.status = .failed(.unconfirmed)
            }
            if correctedConfidence != nil && role != .primary {
                // A fallback setting's correction is one more chance for a damaged stripe to be
                // "corrected" into other text: it needs another front end to agree.
                read.status = .failed(.unconfirmed)
            }
        } catch {
            read.status = .failed(.implausible(error))
        }
        return read
    }

    /// Clear text never leaves a failed read.
    static func scrubbed(_ read: TrackRead) -> TrackRead {
        var r = read
        r.text = nil
        r.content = nil
        r.masked = nil
        r.frame = nil
        return r
    }
}

extension TrackRead {
    /// A read that checked but needs a second front end to agree before it is taken.
    var isUnconfirmed: Bool {
        if case .failed(.unconfirmed) = status { return true }
        return false
    }
}
