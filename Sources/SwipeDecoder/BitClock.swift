/// Turns flux transitions into F2F bits with a clock that tracks the cell period continuously.
///
/// Every cell starts with a transition; a 1 has a second one in mid-cell. The segmentation of
/// the transitions into cells is chosen over the whole swipe (a lattice, below); along each path
/// the cell period `T` moves toward each measured cell by `gain` (a first-order tracking loop),
/// so a hand that speeds up or slows down four-fold is followed.
struct BitClock {
    /// Fraction of each measured cell's error that the clock takes on.
    var gain: Double
    /// Pulse height the acquisition run must reach.
    var minimumHeight: Float = 0

    struct Output {
        var bits: [UInt8] = []
        /// How sure each bit decision is, 0 (a guess: a gap filled, noise skipped) to 1 (every
        /// interval where it belongs, every pulse at full height).
        var confidence: [Float] = []
        /// Cell period (samples) after each bit.
        var periods: [Float] = []
        /// Sum of squared relative timing errors, for the jitter figure.
        var squaredError: Double = 0
        /// Time of the first and last transition used.
        var firstPosition: Double = 0
        var lastPosition: Double = 0
        /// Transitions skipped as noise and cells filled in across gaps.
        var repairs: Int = 0
        /// Cells bridged across stretches without transitions.
        var bridged: Int = 0
        /// The lattice's node buffers, kept from run to run.
        var workspace = LatticeWorkspace()

        /// Empties the output with room for `expected` cells (one allocation per array when an
        /// earlier result still holds the old buffers, none otherwise).
        mutating func reset(expected: Int = 0) {
            bits.removeAll(keepingCapacity: true)
            confidence.removeAll(keepingCapacity: true)
            periods.removeAll(keepingCapacity: true)
            bits.reserveCapacity(expected)
            confidence.reserveCapacity(expected)
            periods.reserveCapacity(expected)
            squaredError = 0
            firstPosition = 0
            lastPosition = 0
            repairs = 0
            bridged = 0
        }
    }

    /// Leading clocking zeros give the first period: find a run of transitions with even spacing.
    /// Every transition of the run must reach `minimumHeight`, so noise before the card cannot
    /// start the clock.
    static func acquire(
        _ t: [FluxTransition], from: Int, run: Int = acquisitionRun, minimumHeight: Float
    ) -> (start: Int, period: Double)? {
        let n = t.count
        guard n >= run + 2 else { return nil }
        var intervals = [Double](repeating: 0, count: run)
        // A window passes only if its shortest interval is above 0.75 of the median and its
        // longest below 1.3 of it: so only if every transition is strong, every interval is
        // positive and no two neighbouring intervals differ by 1.3 / 0.75 or more (with a hair
        // of slack for rounding). One pass counts how many transitions up to each one could
        // share such a window; only windows that pass this are sorted and tested.
        let spread = 1.3 / 0.75 * (1 + 1e-9)
        var streak = 0
        var previous = 0.0
        for i in from..<n {
            if t[i].amplitude < minimumHeight { streak = 0; continue }
            if streak == 0 { streak = 1; continue }
            let interval = t[i].position - t[i - 1].position
            if interval <= 0 {
                streak = 1
            } else if streak >= 2 && max(previous, interval) >= spread * min(previous, interval) {
                streak = 2
            } else {
                streak += 1
            }
            previous = interval
            guard streak > run else { continue }
            let s = i - run
            var shortest = Double.infinity, longest = -Double.infinity
            for k in 0..<run {
                let value = t[s + k + 1].position - t[s + k].position
                intervals[k] = value
                shortest = min(shortest, value)
                longest = max(longest, value)
            }
            if longest >= spread * shortest { continue }
            // Insertion sort of eight values, no allocation.
            for k in 1..<run {
                let value = intervals[k]
                var j = k
                while j > 0 && intervals[j - 1] > value {
                    intervals[j] = intervals[j - 1]
                    j -= 1
                }
                intervals[j] = value
            }
            let median = intervals[run / 2]
            if median > 0, intervals[0] > 0.75 * median, intervals[run - 1] < 1.3 * median {
                return (s, median)
            }
        }
        return nil
    }

    /// Decodes `transitions` (time order, alternating polarity) into bits. `backward` walks from
    /// the last transition to the first, giving the bits in reverse order.
    func run(_ transitions: [FluxTransition], backward: Bool, into out: inout Output) {
        runLattice(transitions, backward: backward, into: &out)
    }

}

extension BitClock {
    /// How the lattice read the cell that ends at a transition.
    enum CellReading: UInt8 {
        /// A 0: no transition inside the cell.
        case zero
        /// A 1: one transition at mid-cell.
        case one
        /// A 0 whose two inner extrema were skipped as noise (a repair).
        case skippedNoise
        /// A stretch without transitions, bridged by `cells` zeros (a guess).
        case bridged
    }

    /// Per-transition state of the lattice: the best way to reach "transition i is a cell
    /// boundary".
    struct Node {
        var cost: Double = .infinity
        var previous: Int = -1
        var period: Double = 0
        var kind = CellReading.zero
        var cells: UInt8 = 1
        /// The transition this node belongs to (filled in on the chosen path).
        var index: Int = 0
        var fit: Double = 0
        var runnerUp: Double = .infinity
        /// 1 / period, so that the lattice multiplies where it would divide.
        var inversePeriod: Double = 0
    }

    /// Relative spread of a cell's length around the clock, and of a mid-cell transition
    /// around the cell's centre (jitter of real swipes is up to about 10 % of a cell).
    static let cellSpread = 0.12
    static let midSpread = 0.1
    /// Cost of calling two extrema noise.
    static let spuriousPenalty = 10.0
    /// Mean cost per cell of a chain that needs no second reading.
    static let cleanChainCost = 1.0
    /// A runner-up this much costlier than the best leaves a bit fully sure.
    static let marginScale = 6.0
    /// Cost of bridging a stretch without transitions.
    static let gapPenalty = 16.0
    /// A cell whose timing cost reaches this many spreads (its square as cost) has no
    /// confidence from its timing left.
    static let fitSpreads = 3.5
    /// Cells read backwards before the acquisition run are kept while each costs less than a
    /// bridged gap: beyond that the clock was following noise, not a card.
    static let prefixFitLimit = gapPenalty
    /// Extra cost, per half of the boundaries' height it lacks, of a mid-cell pulse weaker than
    /// half the boundaries around it (a weak pulse between strong ones is more likely noise).
    static let weakMidPenalty = 12.0
    /// Extra cost of skipping two extrema as noise, scaled by how tall they stand against the
    /// boundaries (skipping pulses as tall as the boundaries costs this much more).
    static let skippedHeightPenalty = 8.0
    /// A stretch is bridged only when it spans at least this many periods (shorter is a 0 or a
    /// 1 cell with jitter).
    static let shortestBridge = 1.6
    /// The card has left the head when a gap is this many periods long: even bridged cells
    /// would not reach the next transition.
    static let cardGone = 3.5
    /// Transitions at an even spacing that start the clock (the clocking zeros).
    static let acquisitionRun = 8

    /// Dynamic programming over the transitions: every transition is a cell boundary or a
    /// mid-cell transition of a 1; the segmentation with the least timing cost wins, so one
    /// ambiguous interval is decided by the intervals that follow it, not on its own. The period
    /// follows each path with the tracking loop's gain.
    func runLattice(_ transitions: [FluxTransition], backward: Bool, into out: inout Output) {
        // A cell per transition at most, and a few bridged ones.
        out.reset(expected: transitions.count + 16)
        var t = transitions
        if backward {
            t.reverse()
            let end = t.first?.position ?? 0
            for i in t.indices { t[i].position = end - t[i].position }
        }
        guard let (start, acquired) = BitClock.acquire(t, from: 0, minimumHeight: minimumHeight) else { return }
        let main = bestChain(t, start: start, period: acquired, workspace: out.workspace)
        guard !main.isEmpty else { return }
        // Cells before the first even run (noise, or a card that does not start with clocking
        // zeros): read them backwards from the run, and keep them while they fit cleanly.
        var prefix: [Node] = []
        var firstIndex = start
        if start > 0 {
            var head = Array(t[0...start].reversed())
            let origin = head[0].position
            for i in head.indices { head[i].position = origin - head[i].position }
            for node in bestChain(head, start: 0, period: main[0].period, workspace: out.workspace) {
                if node.kind == .skippedNoise || node.kind == .bridged || node.fit > BitClock.prefixFitLimit { break }
                prefix.append(node)
                firstIndex = start - node.index
            }
            prefix.reverse()
        }
        out.firstPosition = t[firstIndex].position
        out.lastPosition = t[main[main.count - 1].index].position
        // Every cell's bit, confidence and period written in place: one resize per array, then
        // plain stores (appending cell by cell checks capacity and uniqueness each time).
        var cells = 0
        for node in prefix { cells += node.kind == .bridged ? Int(node.cells) : 1 }
        for node in main { cells += node.kind == .bridged ? Int(node.cells) : 1 }
        out.bits.append(contentsOf: repeatElement(0, count: cells))
        out.confidence.append(contentsOf: repeatElement(0, count: cells))
        out.periods.append(contentsOf: repeatElement(0, count: cells))
        var repairs = 0, bridged = 0
        var squaredError = 0.0
        out.bits.withUnsafeMutableBufferPointer { bits in
            out.confidence.withUnsafeMutableBufferPointer { confidence in
                out.periods.withUnsafeMutableBufferPointer { periods in
                    var k = 0
                    func emit(_ node: Node) {
                        let fit = clamp01(1 - node.fit.squareRoot() / BitClock.fitSpreads)
                        let margin = clamp01((node.runnerUp - node.cost) / BitClock.marginScale)
                        // A 0 cell with two small extrema skipped as noise is as sure as its timing
                        // and its margin over reading them as transitions; only a bridged stretch is
                        // a guess.
                        var sure = node.kind == .bridged ? 0 : Float(min(fit, margin))
                        let period = Float(node.period)
                        switch node.kind {
                        case .skippedNoise: repairs += 1
                        case .bridged:
                            // A stretch with no transition at all: bridged with zeros, a guess.
                            for _ in 1..<Int(node.cells) {
                                bits[k] = 0
                                confidence[k] = 0
                                periods[k] = period
                                k += 1
                            }
                            bridged += Int(node.cells)
                            sure = 0
                        case .zero, .one: break
                        }
                        bits[k] = node.kind == .one ? 1 : 0
                        confidence[k] = sure
                        periods[k] = period
                        k += 1
                        squaredError += node.fit * BitClock.cellSpread * BitClock.cellSpread
                    }
                    for node in prefix { emit(node) }
                    for node in main { emit(node) }
                }
            }
        }
        out.repairs += repairs
        out.bridged += bridged
        out.squaredError += squaredError
        if backward {
            let end = transitions.last?.position ?? 0
            let first = end - out.lastPosition
            out.lastPosition = end - out.firstPosition
            out.firstPosition = first
        }
    }

    /// The cheapest chain of cells from `start`. An even run is zeros at its spacing or ones at
    /// twice it (a card that ends in ones, read backwards); both readings cost nothing until the
    /// first cell that tells them apart, so both are run and the cheaper kept.
    func bestChain(_ t: [FluxTransition], start: Int, period: Double, workspace: LatticeWorkspace) -> [Node] {
        let single = workspace.nodes(0, count: t.count)
        let a = lattice(t, start: start, period: period, nodes: single)
        var (nodes, last) = (single, a.last)
        // A clean chain at the run's own spacing settles it: read as ones at twice the spacing,
        // the run's first 0 cell would have cost far more.
        if a.cost > BitClock.cleanChainCost {
            let doubled = workspace.nodes(1, count: t.count)
            let b = lattice(t, start: start, period: 2 * period, nodes: doubled)
            if b.cost < a.cost { (nodes, last) = (doubled, b.last) }
        }
        // Walk back once to count the cells, then fill the path front to back.
        var length = 0
        var k = last
        while k > start { length += 1; k = nodes[k].previous }
        guard k == start else { return [] }
        return [Node](unsafeUninitializedCapacity: length) { path, count in
            var k = last
            var slot = length - 1
            while k > start {
                var node = nodes[k]
                node.index = k
                (path.baseAddress! + slot).initialize(to: node)
                slot -= 1
                k = node.previous
            }
            count = length
        }
    }

    /// Fills `nodes` (room for `t.count`; only what the walk writes is read) for a start at
    /// `start` with `period`; returns the last boundary reached and the cost per cell of the
    /// best path to it.
    func lattice(_ transitions: [FluxTransition], start: Int, period initialPeriod: Double,
                 nodes: UnsafeMutablePointer<Node>) -> (last: Int, cost: Double) {
        let gain = self.gain
        let last = transitions.withUnsafeBufferPointer { t in
            BitClock.fill(UnsafeMutableBufferPointer(start: nodes, count: t.count), t, start: start, period: initialPeriod, gain: gain)
        }
        var cells = 0
        var k = last
        while k > start && k >= 0 {
            cells += 1
            k = nodes[k].previous
        }
        return (last, cells > 0 ? nodes[last].cost / Double(cells) : .infinity)
    }

    /// The lattice's inner loop over raw buffers: returns the last boundary reached.
    private static func fill(_ nodes: UnsafeMutableBufferPointer<Node>, _ t: UnsafeBufferPointer<FluxTransition>,
                             start: Int, period initialPeriod: Double, gain: Double) -> Int {
        let n = t.count
        nodes[start] = Node(cost: 0, previous: -1, period: initialPeriod, kind: .zero, fit: 1, runnerUp: .infinity,
                            inversePeriod: 1 / initialPeriod)
        // Divisions cost many times a multiplication: the constant ones become products.
        let inverseSpread = 1 / BitClock.cellSpread, inverseMidSpread = 1 / BitClock.midSpread
        var last = start
        var i = start + 1
        while i < n {
            var best = Node()
            @inline(__always) func consider(from j: Int, kind: CellReading) {
                guard j >= start, nodes[j].cost.isFinite else { return }
                let period = nodes[j].period
                let length = t[i].position - t[j].position
                let r = length * nodes[j].inversePeriod
                let e = (r - 1) * inverseSpread
                var local = e * e
                switch kind {
                case .one:
                    let d1 = t[j + 1].position - t[j].position
                    let m = (d1 / length - 0.5) * inverseMidSpread
                    local += m * m
                    // A weak mid-cell pulse between strong boundaries is less likely real.
                    let edge = max(Double(min(t[i].amplitude, t[j].amplitude)), 1e-9)
                    let inner = Double(t[j + 1].amplitude)
                    if inner < 0.5 * edge { local += (0.5 - inner / edge) * BitClock.weakMidPenalty }
                case .skippedNoise:
                    let edge = Double(min(t[i].amplitude, t[j].amplitude))
                    let inner = Double(max(t[j + 1].amplitude, t[j + 2].amplitude))
                    local += BitClock.spuriousPenalty + BitClock.skippedHeightPenalty * min(1, inner / max(edge, 1e-9))
                case .bridged:
                    guard r >= BitClock.shortestBridge else { return }
                    let cells = r.rounded()
                    let z = (r / cells - 1) * inverseSpread
                    local = BitClock.gapPenalty + z * z
                case .zero:
                    break
                }
                let total = nodes[j].cost + local
                if total < best.cost {
                    best.runnerUp = best.cost
                    best.cost = total
                    best.previous = j
                    best.kind = kind
                    best.fit = local
                    if kind == .bridged {
                        let cells = max(2, r.rounded())
                        best.cells = UInt8(min(255, cells))
                        best.period = period + gain * (length / cells - period)
                    } else {
                        best.cells = 1
                        best.period = period + gain * (length - period)
                    }
                } else if total < best.runnerUp {
                    best.runnerUp = total
                }
            }
            // The card has left the head when even a whole cell cannot reach this transition.
            let gap = t[i].position - t[i - 1].position
            if gap > BitClock.cardGone * max(nodes[i - 1].period, nodes[last].period) && nodes[i - 1].cost.isFinite { break }
            consider(from: i - 1, kind: .zero)
            consider(from: i - 2, kind: .one)
            // The penalised readings cannot change the result when they cost at least the
            // confidence margin's full scale more than the best so far: skip them then.
            if i - 3 >= start, nodes[i - 3].cost + BitClock.spuriousPenalty < best.cost + BitClock.marginScale {
                consider(from: i - 3, kind: .skippedNoise)
            }
            if nodes[i - 1].cost + BitClock.gapPenalty < best.cost + BitClock.marginScale {
                consider(from: i - 1, kind: .bridged)
            }
            if best.cost.isFinite {
                best.inversePeriod = 1 / best.period
                last = i
            }
            nodes[i] = best
            i += 1
        }
        return last
    }
}

@inline(__always)
func clamp01(_ x: Double) -> Double { min(1, max(0, x)) }

/// Node buffers for the lattice, grown as needed and reused: the lattice writes every node it
/// later reads, so they are never cleared.
final class LatticeWorkspace {
    private var buffers: [UnsafeMutablePointer<BitClock.Node>] = [.allocate(capacity: 1), .allocate(capacity: 1)]
    private var capacities = [1, 1]

    func nodes(_ which: Int, count: Int) -> UnsafeMutablePointer<BitClock.Node> {
        if capacities[which] < count {
            buffers[which].deallocate()
            capacities[which] = max(count, 2 * capacities[which])
            buffers[which] = .allocate(capacity: capacities[which])
        }
        return buffers[which]
    }

    deinit { for buffer in buffers { buffer.deallocate() } }
}
