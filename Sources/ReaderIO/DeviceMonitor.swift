import CUdev
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What the device monitor reports, in order, on its thread.
public enum DeviceEvent: Sendable, Hashable {
    /// A sound card udev has finished with (`SOUND_INITIALIZED=1`), found at start or plugged.
    /// Modems are never reported. A card may be reported again (a later `change`).
    case cardReady(SoundCard)
    /// The card went away.
    case cardRemoved(SoundCard)
    /// The jacks of a watched card: on starting to watch, on a settled plug or unplug, and on a
    /// counted flap.
    case jack(key: String, JackState)
    /// A card's jack controls could not be opened or read (the watch ends).
    case jackFailed(key: String, message: String)
}

public struct DeviceMonitorError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// The device monitor thread: it blocks in `poll()` on the udev monitor's descriptor (the
/// `sound` subsystem), the control descriptors of the cards whose jacks it watches, and an
/// eventfd (stop, or a watch to add or drop), with a timeout only while a jack change is being
/// debounced. It never spins. libudev and alsa-lib read their own descriptors, which is why
/// this is a thread of its own rather than SwiftNIO.
public final class DeviceMonitor: @unchecked Sendable {
    public typealias JackSourceFactory = @Sendable (_ control: String) throws(ALSAError) -> any JackControlSource

    private let udev: OpaquePointer
    private let monitor: OpaquePointer
    private let wake = EventFD()
    private let stopping = Atomic<Bool>(false)
    private let deliver: @Sendable (DeviceEvent) -> Void
    private let makeJackSource: JackSourceFactory
    private let settle: Double
    private let flapWindow: Double
    private enum Command { case watch(key: String, control: String), unwatch(key: String) }
    private let commands = Mutex<[Command]>([])
    private let thread = Mutex<OSThread?>(nil)
    private let wakeUpCount = Atomic<Int>(0)
    /// How many times the thread has returned from `poll()`: it only does on an event, a
    /// command or a debounce deadline (the tests check it stays put while nothing happens).
    public var wakeUps: Int { wakeUpCount.load(ordering: .relaxed) }
    /// Monitor thread only.
    private var watches: [String: JackWatch] = [:]
    /// Cards seen ready, by syspath (monitor thread, or `start` before the thread).
    private var cards: [String: SoundCard] = [:]

    /// Creates and enables the udev monitor (so nothing plugged from now on is missed); `start()`
    /// then enumerates the cards already there and starts the thread.
    public init(settle: Double = 0.5, flapWindow: Double = 1.0,
                jackSource: @escaping JackSourceFactory = { control throws(ALSAError) in try ALSAJackControls(device: control) },
                onEvent: @escaping @Sendable (DeviceEvent) -> Void) throws(DeviceMonitorError) {
        guard let udev = udev_new() else { throw DeviceMonitorError(message: "libudev: udev_new failed") }
        guard let monitor = udev_monitor_new_from_netlink(udev, "udev") else {
            udev_unref(udev)
            throw DeviceMonitorError(message: "libudev: cannot create a monitor for udev events (errno \(errno))")
        }
        var rc = udev_monitor_filter_add_match_subsystem_devtype(monitor, "sound", nil)
        if rc >= 0 { rc = udev_monitor_enable_receiving(monitor) }
        guard rc >= 0 else {
            udev_monitor_unref(monitor)
            udev_unref(udev)
            throw DeviceMonitorError(message: "libudev: cannot receive udev events (error \(rc))")
        }
        self.udev = udev
        self.monitor = monitor
        self.settle = settle
        self.flapWindow = flapWindow
        makeJackSource = jackSource
        deliver = onEvent
    }

    deinit {
        stop()
        for watch in watches.values { watch.source.close() }
        udev_monitor_unref(monitor)
        udev_unref(udev)
    }

    /// Returns the cards present now, ready (the monitor is already receiving, so a card plugged
    /// meanwhile is also reported by its event), then follows events on the monitor thread.
    /// `acceptUninitialized`: report cards udev has no record of too (udevd is not running, so
    /// nothing will ever mark them initialized).
    public func start(acceptUninitialized: Bool = false) -> [SoundCard] {
        let found = Self.enumerate(udev)
        let ready = found.filter { ($0.isInitialized || acceptUninitialized) && !$0.isModem }
            .sorted { ($0.number ?? 0) < ($1.number ?? 0) }
        for card in ready { cards[card.syspath] = card }
        let worker = OSThread(name: "posmini-devices") { [self] in run() }
        thread.withLock { $0 = worker }
        return ready
    }

    /// Follows the jacks of `control` (an ALSA control device, `hw:CARD=PCH`), reported as `key`.
    public func watchJacks(key: String, control: String) {
        commands.withLock { $0.append(.watch(key: key, control: control)) }
        wake.signal()
    }

    public func unwatchJacks(key: String) {
        commands.withLock { $0.append(.unwatch(key: key)) }
        wake.signal()
    }

    /// Ends the thread (joined); idempotent.
    public func stop() {
        stopping.store(true, ordering: .releasing)
        wake.signal()
        let worker = thread.withLock { t -> OSThread? in
            let w = t
            t = nil
            return w
        }
        worker?.join()
    }

    // MARK: The monitor thread

    private func run() {
        let udevFD = udev_monitor_get_fd(monitor)
        while !stopping.load(ordering: .acquiring) {
            var entries = [pollfd(fd: wake.descriptor, events: Int16(POLLIN), revents: 0),
                           pollfd(fd: udevFD, events: Int16(POLLIN), revents: 0)]
            let keys = watches.keys.sorted()
            var ranges: [String: Range<Int>] = [:]
            for key in keys {
                let descriptors = watches[key]!.source.pollDescriptors
                ranges[key] = entries.count..<(entries.count + descriptors.count)
                entries += descriptors.map { pollfd(fd: $0.descriptor, events: $0.events, revents: 0) }
            }
            var timeout: Int32 = -1
            if let next = watches.values.compactMap(\.deadline).min() {
                timeout = Int32(max(0, min(60_000, ((next - monotonicSeconds()) * 1_000).rounded(.up))))
            }
            let ready = entries.withUnsafeMutableBufferPointer { all in
                try? SystemCall.retrying("poll") { poll(all.baseAddress, nfds_t(all.count), timeout) }
            }
            wakeUpCount.add(1, ordering: .relaxed)
            if ready == nil { break }
            if stopping.load(ordering: .acquiring) { break }
            if entries[0].revents != 0 {
                _ = wake.drain()
                applyCommands()
            }
            if entries[1].revents & Int16(POLLIN) != 0 { receiveUdevEvents() }
            let now = monotonicSeconds()
            for key in keys {
                guard let watch = watches[key], let range = ranges[key] else { continue }
                let polled = entries[range].map { PollEntry(descriptor: $0.fd, events: $0.events, returned: $0.revents) }[...]
                if polled.contains(where: { $0.returned & Int16(POLLERR | POLLHUP | POLLNVAL) != 0 }) {
                    // The card's control device went away (its removal arrives from udev).
                    endWatch(key, failure: "\(key): the control device \(watchControl(watch)) closed")
                    continue
                }
                if polled.contains(where: { $0.returned != 0 }), watch.source.consumeEvents(polled) {
                    do {
                        if let state = try watch.controlsChanged(at: now) { deliver(.jack(key: key, state)) }
                    } catch {
                        endWatch(key, failure: "\(key): \(error)")
                        continue
                    }
                }
                if let state = watch.tick(at: now) { deliver(.jack(key: key, state)) }
            }
        }
    }

    private func watchControl(_ watch: JackWatch) -> String {
        (watch.source as? ALSAJackControls)?.device ?? "of the card"
    }

    private func endWatch(_ key: String, failure: String?) {
        guard let watch = watches.removeValue(forKey: key) else { return }
        watch.source.close()
        if let failure { deliver(.jackFailed(key: key, message: failure)) }
    }

    private func applyCommands() {
        let pending = commands.withLock { c -> [Command] in
            let all = c
            c.removeAll()
            return all
        }
        for command in pending {
            switch command {
            case .watch(let key, let control):
                endWatch(key, failure: nil)
                do {
                    let source = try makeJackSource(control)
                    let watch = try JackWatch(source: source, now: monotonicSeconds(), settle: settle, flapWindow: flapWindow)
                    watches[key] = watch
                    deliver(.jack(key: key, watch.state))
                } catch {
                    deliver(.jackFailed(key: key, message: "\(key): \(error)"))
                }
            case .unwatch(let key):
                endWatch(key, failure: nil)
            }
        }
    }

    private func receiveUdevEvents() {
        // One event per wake-up: poll is level-triggered and says when there is another, and
        // the descriptor is never read when it has nothing (it may be a blocking one).
        if let device = udev_monitor_receive_device(monitor) {
            defer { udev_device_unref(device) }
            guard let card = Self.card(device), !card.isModem else { return }
            let action = udev_device_get_action(device).map { String(cString: $0) } ?? ""
            switch action {
            case "remove":
                let known = cards.removeValue(forKey: card.syspath)
                deliver(.cardRemoved(known ?? card))
            case "add", "change", "bind", "online":
                guard card.isInitialized else { return }
                cards[card.syspath] = card
                deliver(.cardReady(card))
            default:
                return
            }
        }
    }

    /// The sound cards udev knows now (modems included: callers decide), by card number.
    public static func soundCards() -> [SoundCard] {
        guard let udev = udev_new() else { return [] }
        defer { udev_unref(udev) }
        return enumerate(udev).sorted { ($0.number ?? 0) < ($1.number ?? 0) }
    }

    private static func enumerate(_ udev: OpaquePointer) -> [SoundCard] {
        let enumerate = udev_enumerate_new(udev)
        defer { udev_enumerate_unref(enumerate) }
        udev_enumerate_add_match_subsystem(enumerate, "sound")
        udev_enumerate_scan_devices(enumerate)
        var entry = udev_enumerate_get_list_entry(enumerate)
        var found: [SoundCard] = []
        while let current = entry {
            if let path = udev_list_entry_get_name(current),
               let device = udev_device_new_from_syspath(udev, path) {
                if let card = card(device) { found.append(card) }
                udev_device_unref(device)
            }
            entry = udev_list_entry_get_next(current)
        }
        return found
    }

    /// The card behind a `sound` device, if it is a card (`cardN`; not its PCMs and controls).
    static func card(_ device: OpaquePointer) -> SoundCard? {
        guard let cName = udev_device_get_sysname(device), let cPath = udev_device_get_syspath(device) else { return nil }
        let sysname = String(cString: cName)
        guard sysname.hasPrefix("card"), let number = Int(sysname.dropFirst(4)) else { return nil }
        var properties: [String: String] = [:]
        for key in SoundCard.keptProperties {
            if let value = udev_device_get_property_value(device, key) { properties[key] = String(cString: value) }
        }
        let id = udev_device_get_sysattr_value(device, "id").map { String(cString: $0) }
        return SoundCard(syspath: String(cString: cPath), number: number, cardID: id, properties: properties)
    }
}
