import CALSA
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One jack control's reading.
public struct JackReading: Sendable, Hashable {
    public var name: String
    public var plugged: Bool
    public init(name: String, plugged: Bool) {
        self.name = name
        self.plugged = plugged
    }
}

/// A descriptor to poll and what poll said of it (`pollfd` without the C module in the API).
public struct PollEntry: Sendable, Hashable {
    public var descriptor: Int32
    public var events: Int16
    public var returned: Int16 = 0
    public init(descriptor: Int32, events: Int16, returned: Int16 = 0) {
        self.descriptor = descriptor
        self.events = events
        self.returned = returned
    }
}

/// Where jack readings come from: a card's ALSA controls, or a fake in tests.
public protocol JackControlSource: AnyObject {
    /// Every `… Jack` control of the card (not the `Phantom Jack`s, which never change).
    func readJacks() throws(ALSAError) -> [JackReading]
    /// Descriptors to poll for control events (empty for a source that is only read).
    var pollDescriptors: [PollEntry] { get }
    /// After poll: consumes pending events (given the polled entries for this source); true
    /// when a jack may have changed.
    func consumeEvents(_ polled: ArraySlice<PollEntry>) -> Bool
    func close()
}

/// The debounce of one jack: a plug or unplug counts once the contacts stay put for `settle`
/// seconds (a reader pushed in makes and breaks contact a few times); a change less than
/// `flapWindow` after the previous one is a flap, counted (a worn or loose jack shows as a
/// growing count). Pure: time is passed in.
public struct JackDebouncer: Sendable, Hashable {
    public let settle: Double
    public let flapWindow: Double
    /// The state last reported (nil before the first reading).
    public private(set) var reported: Bool?
    /// The contacts' latest reading.
    public private(set) var raw: Bool?
    public private(set) var flaps = 0
    private var lastChange: Double?
    private var pendingSince: Double?

    public init(settle: Double = 0.5, flapWindow: Double = 1.0) {
        self.settle = settle
        self.flapWindow = flapWindow
    }

    /// A reading at `now`. The first is reported as it is (the state at start-up).
    /// Returns the new reported state when that changed at once (only for the first reading).
    public mutating func observe(_ plugged: Bool, at now: Double) -> Bool? {
        guard let previous = raw else {
            raw = plugged
            reported = plugged
            return plugged
        }
        guard plugged != previous else { return nil }
        if let lastChange, now - lastChange < flapWindow { flaps += 1 }
        lastChange = now
        raw = plugged
        pendingSince = plugged == reported ? nil : now
        return nil
    }

    /// When `settled(at:)` next has something to say.
    public var deadline: Double? { pendingSince.map { $0 + settle } }

    /// The new reported state, once the latest reading has held for `settle`.
    public mutating func settled(at now: Double) -> Bool? {
        guard let since = pendingSince, now - since >= settle, let raw else { return nil }
        pendingSince = nil
        reported = raw
        return raw
    }
}

/// What a watched card's jack reports.
public struct JackState: Sendable, Hashable {
    /// The jacks followed (a reader is an input: the microphone and line-in jacks when the card
    /// has them, else every jack).
    public var jacks: [String]
    /// The debounced state; nil when the card has no jack controls (the reader is then taken
    /// as plugged while the card exists).
    public var plugged: Bool?
    public var flaps: Int

    public init(jacks: [String], plugged: Bool?, flaps: Int) {
        self.jacks = jacks
        self.plugged = plugged
        self.flaps = flaps
    }
}

/// One card's jack detection: readings from a `JackControlSource` through a debouncer.
public final class JackWatch {
    public let source: any JackControlSource
    public private(set) var jacks: [String] = []
    private var debouncer: JackDebouncer

    /// Reads the jacks once (the state at start-up).
    public init(source: any JackControlSource, now: Double, settle: Double = 0.5, flapWindow: Double = 1.0) throws(ALSAError) {
        self.source = source
        debouncer = JackDebouncer(settle: settle, flapWindow: flapWindow)
        let readings = try source.readJacks()
        jacks = Self.followed(readings.map(\.name))
        if let plugged = aggregate(readings) { _ = debouncer.observe(plugged, at: now) }
    }

    public var state: JackState { JackState(jacks: jacks, plugged: debouncer.reported, flaps: debouncer.flaps) }
    public var deadline: Double? { debouncer.deadline }

    /// The input jacks if there are any, else all of them; never a `Phantom Jack` (always
    /// "plugged": it only says the pin exists).
    static func followed(_ all: [String]) -> [String] {
        let names = all.filter { !$0.hasSuffix("Phantom Jack") }
        let inputs = names.filter { $0.contains("Mic") || $0.contains("Line") || $0.contains("Headset") }
        return inputs.isEmpty ? names : inputs
    }

    private func aggregate(_ readings: [JackReading]) -> Bool? {
        let followed = readings.filter { jacks.contains($0.name) }
        return followed.isEmpty ? nil : followed.contains(where: \.plugged)
    }

    /// The controls changed (or may have): reads them. Returns the new state when something a
    /// client sees changed (a flap counted).
    public func controlsChanged(at now: Double) throws(ALSAError) -> JackState? {
        guard let plugged = aggregate(try source.readJacks()) else { return nil }
        let flapsBefore = debouncer.flaps
        _ = debouncer.observe(plugged, at: now)
        return debouncer.flaps != flapsBefore ? state : nil
    }

    /// Time passed: the new state when a change has settled.
    public func tick(at now: Double) -> JackState? {
        debouncer.settled(at: now) == nil ? nil : state
    }
}

/// The jack controls of a real card through alsa-lib's control interface: elements of
/// interface CARD named `… Jack`, followed with `snd_ctl_subscribe_events`.
public final class ALSAJackControls: JackControlSource {
    public let device: String
    private var ctl: OpaquePointer?
    /// numid of each jack element.
    private var elements: [(name: String, numid: UInt32)] = []
    public private(set) var pollDescriptors: [PollEntry] = []

    /// Opens `device` (`hw:CARD=PCH`) and lists its jack controls.
    public init(device: String) throws(ALSAError) {
        self.device = device
        posmini_alsa_quiet()
        var handle: OpaquePointer?
        var rc = snd_ctl_open(&handle, device, SND_CTL_NONBLOCK)
        guard rc == 0, let handle else { throw ALSAError(device: device, call: "snd_ctl_open", code: rc) }
        ctl = handle
        var list: OpaquePointer?
        snd_ctl_elem_list_malloc(&list)
        defer { snd_ctl_elem_list_free(list) }
        rc = snd_ctl_elem_list(handle, list)
        guard rc == 0 else { close(); throw ALSAError(device: device, call: "snd_ctl_elem_list", code: rc) }
        let count = snd_ctl_elem_list_get_count(list)
        if count > 0 {
            rc = snd_ctl_elem_list_alloc_space(list, count)
            guard rc == 0 else { close(); throw ALSAError(device: device, call: "snd_ctl_elem_list_alloc_space", code: rc) }
            defer { snd_ctl_elem_list_free_space(list) }
            rc = snd_ctl_elem_list(handle, list)
            guard rc == 0 else { close(); throw ALSAError(device: device, call: "snd_ctl_elem_list", code: rc) }
            for index in 0..<snd_ctl_elem_list_get_used(list) {
                guard snd_ctl_elem_list_get_interface(list, index) == SND_CTL_ELEM_IFACE_CARD,
                      let cName = snd_ctl_elem_list_get_name(list, index) else { continue }
                let name = String(cString: cName)
                guard name.hasSuffix(" Jack"), !name.hasSuffix("Phantom Jack") else { continue }
                elements.append((name, snd_ctl_elem_list_get_numid(list, index)))
            }
        }
        if !elements.isEmpty {
            rc = snd_ctl_subscribe_events(handle, 1)
            guard rc == 0 else { close(); throw ALSAError(device: device, call: "snd_ctl_subscribe_events", code: rc) }
            let n = Int(snd_ctl_poll_descriptors_count(handle))
            var fds = [pollfd](repeating: pollfd(fd: -1, events: 0, revents: 0), count: max(n, 0))
            let filled = fds.withUnsafeMutableBufferPointer { snd_ctl_poll_descriptors(handle, $0.baseAddress, UInt32($0.count)) }
            pollDescriptors = fds.prefix(Int(max(filled, 0))).map { PollEntry(descriptor: $0.fd, events: $0.events) }
        }
    }

    deinit { close() }

    public func readJacks() throws(ALSAError) -> [JackReading] {
        guard let ctl else { throw ALSAError(device: device, call: "snd_ctl_elem_read", code: -EBADF) }
        var value: OpaquePointer?
        snd_ctl_elem_value_malloc(&value)
        defer { snd_ctl_elem_value_free(value) }
        var readings: [JackReading] = []
        for element in elements {
            snd_ctl_elem_value_clear(value)
            snd_ctl_elem_value_set_interface(value, SND_CTL_ELEM_IFACE_CARD)
            snd_ctl_elem_value_set_numid(value, element.numid)
            let rc = snd_ctl_elem_read(ctl, value)
            guard rc == 0 else { throw ALSAError(device: device, call: "snd_ctl_elem_read", code: rc) }
            readings.append(JackReading(name: element.name, plugged: snd_ctl_elem_value_get_boolean(value, 0) != 0))
        }
        return readings
    }

    public func consumeEvents(_ polled: ArraySlice<PollEntry>) -> Bool {
        guard let ctl, !polled.isEmpty else { return false }
        var entries = polled.map { pollfd(fd: $0.descriptor, events: $0.events, revents: $0.returned) }
        var revents: UInt16 = 0
        _ = entries.withUnsafeMutableBufferPointer { snd_ctl_poll_descriptors_revents(ctl, $0.baseAddress, UInt32($0.count), &revents) }
        guard revents & UInt16(POLLIN) != 0 else { return false }
        var event: OpaquePointer?
        snd_ctl_event_malloc(&event)
        defer { snd_ctl_event_free(event) }
        var changed = false
        // Drain: every pending event, then one read of the jacks.
        while snd_ctl_read(ctl, event) > 0 {
            if snd_ctl_event_get_type(event) == SND_CTL_EVENT_ELEM { changed = true }
        }
        return changed
    }

    public func close() {
        if let ctl {
            if !elements.isEmpty { snd_ctl_subscribe_events(ctl, 0) }
            snd_ctl_close(ctl)
        }
        ctl = nil
        pollDescriptors = []
    }
}
