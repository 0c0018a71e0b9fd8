import Synchronization

/// One ordered, bounded queue from a thread that produces events (a reader session's decoder
/// thread) to one async consumer (the daemon's pump for that reader). Events leave in the order
/// they came, one at a time: the consumer takes the next only after it has handled the last, so
/// whatever else the consumer's actor has to do (a client's request) runs between two events,
/// never behind the whole backlog.
///
/// When full, `put` either drops the event and counts it (a live source: its decoder thread must
/// never wait, and the capacity is far beyond what human swipes can fill) or waits for room (a
/// file replayed flat out, which would otherwise outrun the consumer without limit).
public final class EventQueue<Element: Sendable>: Sendable {
    public let capacity: Int

    private struct State {
        var items: [Element?]
        var head = 0
        var count = 0
        var closed = false
        var overflows = 0
        /// The consumer, waiting for the next event.
        var waiter: CheckedContinuation<Element?, Never>?
    }

    private enum PutOutcome { case handed(CheckedContinuation<Element?, Never>), queued, dropped, full }

    private let state: Mutex<State>
    /// Signalled whenever the consumer takes an event or the queue closes: what a producer
    /// waiting for room wakes on.
    private let room = EventFD()

    public init(capacity: Int) {
        precondition(capacity >= 1, "an event queue holds at least one event")
        self.capacity = capacity
        state = Mutex(State(items: Array(repeating: nil, count: capacity)))
    }

    /// Events dropped because the queue was full (live sources only).
    public var overflows: Int { state.withLock { $0.overflows } }

    /// Events waiting now.
    public var count: Int { state.withLock { $0.count } }

    /// Adds `event` at the end. Full: with `waitForRoom`, waits until the consumer takes one (or
    /// the queue closes); without, drops `event` and counts it. Returns whether it was queued.
    @discardableResult
    public func put(_ event: Element, waitForRoom: Bool) -> Bool {
        while true {
            let outcome: PutOutcome = state.withLock { s in
                if s.closed { return .dropped }
                if let waiter = s.waiter {
                    // The consumer waits on an empty queue: straight to it.
                    s.waiter = nil
                    return .handed(waiter)
                }
                if s.count < capacity {
                    s.items[(s.head + s.count) % capacity] = event
                    s.count += 1
                    return .queued
                }
                if !waitForRoom {
                    s.overflows += 1
                    return .dropped
                }
                return .full
            }
            switch outcome {
            case .handed(let waiter):
                waiter.resume(returning: event)
                return true
            case .queued: return true
            case .dropped: return false
            case .full:
                // The consumer signals after every take; the timeout only guards against a
                // missed wake-up, the loop looks again either way.
                _ = room.wait(timeoutMilliseconds: 100)
                room.drain()
            }
        }
    }

    /// The next event, waiting for one; nil once the queue is closed and empty.
    public func next() async -> Element? {
        if let (event, done) = take() {
            room.signal()
            return done ? nil : event
        }
        let event: Element? = await withCheckedContinuation { continuation in
            let ready: Element?? = state.withLock { s in
                if s.count > 0 {
                    let event = s.items[s.head]
                    s.items[s.head] = nil
                    s.head = (s.head + 1) % capacity
                    s.count -= 1
                    return .some(event)
                }
                if s.closed { return .some(nil) }
                s.waiter = continuation
                return .none
            }
            if let ready { continuation.resume(returning: ready) }
        }
        room.signal()
        return event
    }

    /// Takes the first event without waiting: (event, false); (nil, true) when closed and
    /// empty; nil when empty and open.
    private func take() -> (Element?, Bool)? {
        state.withLock { s in
            if s.count > 0 {
                let event = s.items[s.head]
                s.items[s.head] = nil
                s.head = (s.head + 1) % capacity
                s.count -= 1
                return (event, false)
            }
            return s.closed ? (nil, true) : nil
        }
    }

    /// No more events: a producer waiting for room gives up, the consumer gets what is queued
    /// and then nil. Later `put`s drop their events.
    public func close() {
        let waiter = state.withLock { s -> CheckedContinuation<Element?, Never>? in
            s.closed = true
            defer { s.waiter = nil }
            return s.count == 0 ? s.waiter : nil
        }
        waiter?.resume(returning: nil)
        room.signal()
    }
}
