import Testing
import Synchronization
import ReaderIO
#if canImport(Glibc)
import Glibc
#endif

/// A card's jack controls, set by the test: an eventfd stands in for the control device's
/// descriptor, so the device monitor's thread wakes for it as for ALSA.
final class FakeJacks: JackControlSource, @unchecked Sendable {
    private let states = Mutex<[JackReading]>([])
    private let descriptor = EventFD()
    private let failing = Atomic<Bool>(false)

    init(_ readings: [JackReading]) { states.withLock { $0 = readings } }

    /// Plugs or unplugs `name` and raises the control event.
    func set(_ name: String, _ plugged: Bool) {
        states.withLock { all in
            for k in all.indices where all[k].name == name { all[k].plugged = plugged }
        }
        descriptor.signal()
    }

    func failReads() {
        failing.store(true, ordering: .relaxed)
        descriptor.signal()
    }

    func readJacks() throws(ALSAError) -> [JackReading] {
        if failing.load(ordering: .relaxed) { throw ALSAError(device: "fake", call: "snd_ctl_elem_read", code: -EIO) }
        return states.withLock { $0 }
    }

    var pollDescriptors: [PollEntry] { [PollEntry(descriptor: descriptor.descriptor, events: Int16(POLLIN))] }

    func consumeEvents(_ polled: ArraySlice<PollEntry>) -> Bool {
        guard polled.contains(where: { $0.returned & Int16(POLLIN) != 0 }) else { return false }
        return descriptor.drain()
    }

    func close() {}
}

@Suite("Jack detection")
struct JackTests {
    @Test("debounce: the first reading counts at once; a change counts once it has held for the settle time")
    func debounce() {
        var jack = JackDebouncer(settle: 0.5, flapWindow: 1.0)
        #expect(jack.observe(false, at: 0) == false)
        #expect(jack.reported == false)
        #expect(jack.observe(true, at: 10) == nil)
        #expect(jack.deadline == 10.5)
        #expect(jack.settled(at: 10.2) == nil)
        #expect(jack.reported == false)
        #expect(jack.settled(at: 10.5) == true)
        #expect(jack.reported == true)
        #expect(jack.deadline == nil)
        #expect(jack.flaps == 0, "one clean plug is not a flap")
        #expect(jack.settled(at: 11) == nil, "reported once")
    }

    @Test("a bounce shorter than the settle time is never reported; changes within a second of each other are counted as flaps")
    func flapping() {
        var jack = JackDebouncer(settle: 0.5, flapWindow: 1.0)
        _ = jack.observe(true, at: 0)
        // A loose jack: out and back in within 0.2 s, three times.
        for k in 0..<3 {
            let t = 5.0 + Double(k) * 0.3
            _ = jack.observe(false, at: t)
            _ = jack.observe(true, at: t + 0.1)
            #expect(jack.settled(at: t + 0.15) == nil)
        }
        #expect(jack.deadline == nil, "back to the reported state: nothing pending")
        #expect(jack.reported == true)
        #expect(jack.flaps == 5, "six changes, each but the first within a second of the previous")
        // A real unplug much later: reported, not a flap.
        _ = jack.observe(false, at: 20)
        #expect(jack.settled(at: 20.5) == false)
        #expect(jack.flaps == 5)
    }

    @Test("a watch follows the input jacks (not the headphone jack when the card has a microphone jack), any of them plugged")
    func followedJacks() throws {
        let fake = FakeJacks([JackReading(name: "Headphone Jack", plugged: true), JackReading(name: "Headset Mic Jack", plugged: false),
                              JackReading(name: "Mic Jack", plugged: false)])
        let watch = try JackWatch(source: fake, now: 0)
        #expect(watch.jacks == ["Headset Mic Jack", "Mic Jack"])
        #expect(watch.state.plugged == false, "the headphone jack alone is not the reader")
        fake.set("Mic Jack", true)
        #expect(try watch.controlsChanged(at: 1) == nil, "no flap, not settled")
        #expect(watch.tick(at: 1.2) == nil)
        #expect(watch.tick(at: 1.5)?.plugged == true)
        // Only a headphone jack: that one.
        let lone = try JackWatch(source: FakeJacks([JackReading(name: "Headphone Jack", plugged: true)]), now: 0)
        #expect(lone.jacks == ["Headphone Jack"])
        #expect(lone.state.plugged == true)
        // No jack controls: nothing to follow.
        let none = try JackWatch(source: FakeJacks([]), now: 0)
        #expect(none.state.plugged == nil)
        #expect(none.deadline == nil)
    }

    /// Collects the device monitor's events.
    final class Events: @unchecked Sendable {
        private let all = Mutex<[DeviceEvent]>([])
        func add(_ e: DeviceEvent) { all.withLock { $0.append(e) } }
        var list: [DeviceEvent] { all.withLock { $0 } }
        func jackStates(_ key: String) -> [JackState] {
            list.compactMap { if case .jack(key, let state) = $0 { return state } else { return nil } }
        }
        func wait(seconds: Double, _ condition: ([DeviceEvent]) -> Bool) -> Bool {
            let deadline = monotonicSeconds() + seconds
            while monotonicSeconds() < deadline {
                if condition(list) { return true }
                usleep(10_000)
            }
            return condition(list)
        }
    }

    @Test("the device monitor thread: a plug settles after the debounce, a loose jack is counted, a failing control ends the watch; idle, it sleeps in poll")
    func monitorThread() throws {
        let fake = FakeJacks([JackReading(name: "Mic Jack", plugged: false), JackReading(name: "Mic Phantom Jack", plugged: true)])
        let events = Events()
        let monitor = try DeviceMonitor(settle: 0.2, flapWindow: 1.0, jackSource: { _ throws(ALSAError) in fake }) { events.add($0) }
        _ = monitor.start()
        defer { monitor.stop() }
        monitor.watchJacks(key: "hw:CARD=PCH", control: "hw:0")
        #expect(events.wait(seconds: 5) { _ in events.jackStates("hw:CARD=PCH").count == 1 })
        #expect(events.jackStates("hw:CARD=PCH").first == JackState(jacks: ["Mic Jack"], plugged: false, flaps: 0))

        // Idle: no events, no deadline: the thread does not wake.
        let idle = monitor.wakeUps
        usleep(500_000)
        #expect(monitor.wakeUps == idle, "the monitor thread woke \(monitor.wakeUps - idle) times while nothing happened")

        let plugged = monotonicSeconds()
        fake.set("Mic Jack", true)
        #expect(events.wait(seconds: 5) { _ in events.jackStates("hw:CARD=PCH").last?.plugged == true })
        let settledAfter = monotonicSeconds() - plugged
        #expect(settledAfter >= 0.2 && settledAfter < 1.5, "reported \(settledAfter) s after the plug")

        // Loose contact: out, in, out, in, 50 ms apart; the state stays plugged, flaps are counted.
        for plugged in [false, true, false, true] {
            fake.set("Mic Jack", plugged)
            usleep(50_000)
        }
        #expect(events.wait(seconds: 5) { _ in (events.jackStates("hw:CARD=PCH").last?.flaps ?? 0) >= 3 })
        usleep(400_000)
        #expect(events.jackStates("hw:CARD=PCH").allSatisfy { $0.plugged != false || $0.flaps == 0 },
                "a bounce never reported as an unplug: \(events.jackStates("hw:CARD=PCH"))")
        #expect(events.jackStates("hw:CARD=PCH").last?.plugged == true)

        fake.failReads()
        #expect(events.wait(seconds: 5) { list in list.contains { if case .jackFailed("hw:CARD=PCH", _) = $0 { return true } else { return false } } })
        let after = monitor.wakeUps
        usleep(300_000)
        #expect(monitor.wakeUps == after, "a failed watch is dropped, not polled")
    }

    @Test("who holds a device: the process with it open is found by its descriptors, with its name")
    func holders() throws {
        var template = Array("/tmp/posmini-holder-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        #expect(fd >= 0)
        close(fd)
        let path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        defer { unlink(path) }
        #expect(DeviceHolders.find(path: path).isEmpty)
        let pidFile = path + ".pid"
        defer { unlink(pidFile) }
        _ = system("sh -c 'exec 3<\(path); exec sleep 5' & echo $! > \(pidFile)")
        var found: [DeviceHolders.Holder] = []
        for _ in 0..<100 where found.isEmpty {
            usleep(20_000)
            found = DeviceHolders.find(path: path)
        }
        let pid = Int32(String(decoding: (try? FileBytes.read(pidFile, limit: 64)) ?? [], as: UTF8.self).split(separator: "\n").first ?? "") ?? -1
        defer { kill(pid, SIGTERM) }
        #expect(found.map(\.pid) == [pid])
        #expect(found.first?.name == "sleep")
    }

    @Test("a card's control device that does not exist is refused by name")
    func missingControl() {
        #expect {
            _ = try ALSAJackControls(device: "hw:97")
        } throws: { error in
            "\(error)".contains("hw:97")
        }
    }

    @Test("ALSA device names: which name a card, and the card's own devices")
    func cardReferences() {
        #expect(CardReference(device: "hw:CARD=PCH,DEV=0") == .id("PCH"))
        #expect(CardReference(device: "plughw:1") == .number(1))
        #expect(CardReference(device: "hw:0,0") == .number(0))
        #expect(CardReference(device: "sysdefault:CARD=\"Device\"") == .id("Device"))
        #expect(CardReference(device: "pulse") == nil)
        #expect(CardReference(device: "default") == nil)
        #expect(CardReference(device: "posmini_replay") == nil)
        #expect(CardReference(device: "hw:DEV=1") == nil)
        // The PCM device number, for /dev/snd/pcmC<card>D<device>c.
        #expect(CardReference.deviceNumber(in: "hw:CARD=PCH,DEV=2") == 2)
        #expect(CardReference.deviceNumber(in: "plughw:1,3") == 3)
        #expect(CardReference.deviceNumber(in: "hw:CARD=PCH,2") == 2)
        #expect(CardReference.deviceNumber(in: "plughw:1") == 0)
        #expect(CardReference.deviceNumber(in: "hw:CARD=PCH,SUBDEV=4") == 0)
        #expect(CardReference.deviceNumber(in: "pulse") == 0)
        let card = SoundCard(syspath: "/sys/devices/x/sound/card1", number: 1, cardID: "Device",
                             properties: ["ID_PATH": "pci-0000:00:14.0-usb-0:2:1.0", "ID_SERIAL": "C-Media_USB_Audio",
                                          "ID_MODEL": "USB_Audio_Device"])
        #expect(card.matches(.id("Device")) && card.matches(.number(1)) && !card.matches(.id("PCH")))
        #expect(card.stableID == "C-Media_USB_Audio@pci-0000:00:14.0-usb-0:2:1.0")
        #expect(card.displayName == "USB Audio Device")
        #expect(card.captureDevice == "hw:1,0")
        #expect(card.resolving("plughw:CARD=Device,DEV=0") == "plughw:CARD=1,DEV=0")
        #expect(card.resolving("hw:Device") == "hw:1")
        #expect(card.resolving("pulse") == "pulse")
        #expect(SoundCard(syspath: "/sys/x", number: 0, cardID: "PCH").stableID == "card-PCH")
    }
}
