public import SwipeDecoder
public import PosminiProtocol
public import Magstripe

/// A swipe's figures, rounded once, as every output writes them: `decode --json` and
/// `listen --json`, the `quality` and `tracks` of CARD and SWIPE_FAILED, and the diagnose
/// report. The one place that turns a `Swipe` into numbers for people and programs.
///
/// Rounding: seconds to 0.1 ms, speeds to 0.1 cm/s, levels and SNR to 0.1 dB, jitter to 10⁻⁴
/// of a cell, samples per half-cell to 0.01, the clipped fraction to 10⁻⁴.
public struct SwipeFigures: Sendable, Hashable {
    public struct Speed: Sendable, Hashable {
        public var mean: Double
        public var min: Double
        public var max: Double
    }

    public var channel: Int
    public var startSeconds: Double
    public var endSeconds: Double
    public var direction: SwipeDirection?
    /// cm/s; nil when no track format gave the cell length.
    public var speed: Speed?
    public var peakDBFS: Double
    public var snrDB: Double
    /// Standard deviation of the transitions from the clock, as a fraction of a cell.
    public var jitter: Double
    public var minimumSamplesPerHalfCell: Double
    public var clippedFraction: Double
    public var candidate: Int?
    public var candidatesTried: Int
    public var problem: SwipeProblem?
    /// The stream position (samples) at which the result was decided.
    public var decidedAt: Int64?
    /// Every track the swipe gave, masked (never the clear text).
    public var tracks: [TrackSummary]
    /// Why each track failed, in words (nil for a track that read), beside `tracks`.
    public var failures: [String?]
    /// For each track in the 5-bit format, what named it Track 2 or 3 (`DensityBasis`), beside
    /// `tracks`.
    public var densities: [DensityBasis?]

    public init(_ swipe: Swipe) {
        let q = swipe.quality
        channel = swipe.tracks.first?.channel ?? 0
        startSeconds = Self.round(swipe.start, 4)
        endSeconds = Self.round(swipe.end, 4)
        direction = swipe.direction
        speed = swipe.speed.map { Speed(mean: Self.round($0.mean, 1), min: Self.round($0.min, 1), max: Self.round($0.max, 1)) }
        peakDBFS = Self.round(q.peakDBFS, 1)
        snrDB = Self.round(q.snrDB, 1)
        jitter = Self.round(q.jitter, 4)
        minimumSamplesPerHalfCell = Self.round(q.minimumSamplesPerHalfCell, 2)
        clippedFraction = Self.round(q.clippedFraction, 4)
        candidate = q.candidate
        candidatesTried = q.candidatesTried
        problem = swipe.problem
        decidedAt = swipe.decidedAt
        tracks = swipe.tracks.map { t in
            TrackSummary(track: t.format.map { Int($0.rawValue) }, status: t.status.code, corrected: t.corrections,
                         masked: t.isOK ? t.masked?.text : nil)
        }
        failures = swipe.tracks.map { t in
            if case .failed(let failure) = t.status { return failure.description }
            return nil
        }
        densities = swipe.tracks.map(\.densityBasis)
    }

    /// `places` decimals.
    public static func round(_ x: Double, _ places: Int) -> Double {
        var scale = 1.0
        for _ in 0..<places { scale *= 10 }
        return (x * scale).rounded() / scale
    }

    /// The `quality` of CARD and SWIPE_FAILED.
    public var summary: SwipeSummary {
        SwipeSummary(snrDB: snrDB, direction: direction?.rawValue, speedCmPerSecond: speed?.mean)
    }

    /// The reason a POS app is given for a bad read.
    public var reason: String { problem?.rawValue ?? "unreadable" }

    /// The object `decode --json` and `listen --json` print for the swipe (`data`, the clear
    /// track, is added by `decode --reveal` alone, never here).
    public func json(file: String) -> JSONValue {
        var f: [String: JSONValue] = ["class": "SWIPE", "file": .string(file), "channel": .number(Double(channel)),
                                      "start_s": .number(startSeconds), "end_s": .number(endSeconds)]
        f["direction"] = direction.map { .string($0.rawValue) }
        f["speed_cm_s"] = speed.map { ["mean": .number($0.mean), "min": .number($0.min), "max": .number($0.max)] }
        f["tracks"] = .array(tracks.indices.map { k in
            guard case .object(var t) = tracks[k].json else { return tracks[k].json }
            t["detail"] = failures[k].map(JSONValue.string)
            t["density"] = densities[k].map { .string($0.rawValue) }
            return .object(t)
        })
        var q: [String: JSONValue] = ["peak_dbfs": .number(peakDBFS), "snr_db": .number(snrDB), "jitter": .number(jitter),
                                      "min_samples_per_half_cell": .number(minimumSamplesPerHalfCell),
                                      "clipped_fraction": .number(clippedFraction), "candidates_tried": .number(Double(candidatesTried))]
        q["candidate"] = candidate.map { .number(Double($0)) }
        f["quality"] = .object(q)
        f["problem"] = problem.map { .string($0.rawValue) }
        f["decided_at"] = decidedAt.map { .number(Double($0)) }
        return .object(f)
    }
}
