/// Holds the swipes of a multi-channel reader until no other channel can still add a track to
/// them, then merges those that overlap in time into one.
public struct ChannelMerger {
    public let channels: Int
    private var pending: [Swipe] = []

    public init(channels: Int) { self.channels = channels }

    public mutating func add(_ swipe: Swipe) { pending.append(swipe) }

    /// The swipes that can go now (all of them when `decoders` is nil: the stream has ended).
    public mutating func ready(_ decoders: [SwipeDecoder]?) -> [Swipe] {
        guard !pending.isEmpty else { return [] }
        guard channels > 1 else {
            defer { pending.removeAll() }
            return pending
        }
        var out: [Swipe] = []
        while let first = pending.first {
            // Everything that overlaps the first pending swipe, transitively.
            var group = [first]
            var rest = Array(pending.dropFirst())
            var grew = true
            while grew {
                grew = false
                let start = group.map(\.start).min()!, end = group.map(\.end).max()!
                if let k = rest.firstIndex(where: { $0.start <= end && start <= $0.end }) {
                    group.append(rest.remove(at: k))
                    grew = true
                }
            }
            let end = group.map(\.end).max()!
            // A channel still gathering a segment that began before this swipe ended may yet
            // add a track to it: wait for it.
            if let decoders, decoders.contains(where: { ($0.openSegmentStart ?? .infinity) <= end }) { break }
            pending = rest
            var merged = Self.merge(group)
            // Decided now: where the slowest channel has reached (the end of the stream: the
            // latest of the group's own decisions).
            if let decoders, let reached = decoders.map(\.samplesProcessed).max() {
                merged.decidedAt = max(reached, merged.decidedAt ?? 0)
            }
            out.append(merged)
        }
        return out
    }

    /// One swipe from the results of several heads: every channel's track, the figures of the
    /// one that read (or the first).
    static func merge(_ group: [Swipe]) -> Swipe {
        guard group.count > 1 else { return group[0] }
        let sorted = group.sorted { ($0.tracks.first?.channel ?? 0) < ($1.tracks.first?.channel ?? 0) }
        var merged = sorted.first(where: { !$0.readTracks.isEmpty }) ?? sorted[0]
        merged.tracks = sorted.flatMap(\.tracks)
        merged.start = group.map(\.start).min()!
        merged.end = group.map(\.end).max()!
        merged.decidedAt = group.compactMap(\.decidedAt).max()
        if !merged.readTracks.isEmpty { merged.problem = nil }
        return merged
    }
}
