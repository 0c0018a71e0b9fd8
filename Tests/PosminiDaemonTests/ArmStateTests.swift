import PosminiProtocol
import Testing
@testable import PosminiDaemon
import TestSupport

/// The arm state machine of docs/PROTOCOL.md ("The life of an arm"), held against the hub.
@Suite("Reader hub: the arm state machine")
struct ArmStateTests {
    @Test("arming again ends the earlier arm with SUPERSEDED (its reference and reader) before ARMED; the card carries the new reference")
    func superseded() async {
        let (hub, a, _) = await twoReaderHub()
        #expect(await hub.handle(.arm(reader: "r1", timeout: 30, reference: "A-1"), from: 1).first?.kind == .armed)
        let again = await hub.handle(.arm(reader: "r1", timeout: 30, reference: "A-2"), from: 1)
        #expect(again.first?.kind == .armed && again.first?["reference"] == "A-2")
        #expect(a.classes == ["SUPERSEDED"])
        #expect(a.received[0]["reference"] == "A-1" && a.received[0]["reader"] == "r1")
        await hub.swipe(decodedSwipe(), reader: "r1")
        #expect(a.classes == ["SUPERSEDED", "CARD"])
        #expect(a.received[1]["reference"] == "A-2")
        // Arming another reader supersedes nothing.
        #expect(await hub.handle(.arm(reader: "r2", timeout: 30, reference: "B-1"), from: 1).first?.kind == .armed)
        #expect(a.classes == ["SUPERSEDED", "CARD"])
    }

    @Test("a cancel after the CARD answers too_late naming the arm's reference and reader, once; after that it is not_armed")
    func tooLate() async {
        let (hub, a, _) = await twoReaderHub()
        _ = await hub.handle(.arm(reader: "r1", timeout: 30, reference: "order-3"), from: 1)
        await hub.swipe(decodedSwipe(), reader: "r1")
        #expect(a.classes == ["CARD"])
        let late = await hub.handle(.cancel(reader: nil), from: 1)
        #expect(late.count == 1)
        #expect(late.first?["code"] == "too_late" && late.first?["reference"] == "order-3" && late.first?["reader"] == "r1")
        #expect(await hub.handle(.cancel(reader: nil), from: 1).first?["code"] == "not_armed")
        // Armed again: a cancel now cancels that arm (the earlier card is no longer in question).
        _ = await hub.handle(.arm(reader: "r1", timeout: 30, reference: "order-4"), from: 1)
        let cancelled = await hub.handle(.cancel(reader: "r1"), from: 1)
        #expect(cancelled.map(\.kind) == [.cancelled])
        #expect(cancelled.first?["reference"] == "order-4" && cancelled.first?["reason"] == "client")
    }

    @Test("a cancel that names a reader ends only that arm; naming a reader the client has not armed is not_armed and ends nothing")
    func cancelOneReader() async {
        let (hub, _, _) = await twoReaderHub()
        _ = await hub.handle(.arm(reader: "r1", timeout: 30, reference: "one"), from: 1)
        _ = await hub.handle(.arm(reader: "r2", timeout: 30, reference: "two"), from: 2)
        #expect(await hub.handle(.cancel(reader: "r2"), from: 1).first?["code"] == "not_armed", "another client's arm")
        _ = await hub.handle(.arm(reader: "r2", timeout: 30, reference: nil), from: 2)
        _ = await hub.handle(.cancel(reader: "r2"), from: 2)
        _ = await hub.handle(.arm(reader: "r2", timeout: 30, reference: "three"), from: 1)
        let one = await hub.handle(.cancel(reader: "r2"), from: 1)
        #expect(one.count == 1 && one.first?["reader"] == "r2" && one.first?["reference"] == "three")
        let status = await hub.handle(.status, from: 1)
        #expect(status.first?["armed"] == 1, "r1's arm is still there")
        #expect(await hub.handle(.cancel(reader: "nowhere"), from: 1).first?["code"] == "not_armed")
        #expect(await hub.handle(.cancel(reader: nil), from: 1).first?["reference"] == "one")
    }

    @Test("shutdown ends every arm with CANCELLED reason shutdown; a client connecting while the daemon stops gets one ERROR shutting_down and no greeting")
    func shutdown() async {
        let (hub, a, b) = await twoReaderHub()
        _ = await hub.handle(.arm(reader: "r1", timeout: 30, reference: "R"), from: 1)
        await hub.shutdown()
        #expect(a.classes == ["CANCELLED"] && a.received[0]["reason"] == "shutdown" && a.received[0]["reference"] == "R")
        #expect(b.classes.isEmpty)
        let late = await hub.connect(RecordingClient(3))
        #expect(late.map(\.kind) == [.error] && late.first?["code"] == "shutting_down")
        #expect(await hub.handle(.arm(reader: "r2", timeout: 30, reference: nil), from: 2).first?["code"] == "shutting_down")
    }

    /// Every arm's reference, and the messages that ended it.
    func endings(_ clients: [RecordingClient], armed: [String]) -> [String: [String]] {
        var ended: [String: [String]] = [:]
        for reference in armed { ended[reference] = [] }
        let endingClasses: Set = ["CARD", "TIMEOUT", "CANCELLED", "READER_REMOVED", "SUPERSEDED"]
        for client in clients {
            for m in client.received {
                guard let c = m["class"]?.stringValue, let reference = m["reference"]?.stringValue else { continue }
                if endingClasses.contains(c) || (c == "ERROR" && m["code"] != "too_late") { ended[reference, default: []].append(c) }
            }
        }
        return ended
    }

    @Test("every arm ends exactly once, over 2 000 random steps of arms, re-arms, cancels, swipes, failed swipes, removals and timeouts")
    func exactlyOneEnding() async throws {
        let hub = ReaderHub()
        let readers = ["r1", "r2", "r3"]
        for r in readers { await hub.readerAppeared(id: r, name: r) }
        let clients = (1...3).map { RecordingClient($0) }
        for c in clients { _ = await hub.connect(c) }
        var random = TestRandom(seed: 23)
        var armed: [String] = []
        var directEndings: [String: [String]] = [:]
        let good = decodedSwipe(), bad = decodedSwipe(cut: true)
        for step in 0..<2_000 {
            let client = Int.random(in: 1...3, using: &random)
            let reader = readers.randomElement(using: &random)!
            switch Int.random(in: 0..<8, using: &random) {
            case 0, 1:
                let reference = "arm-\(step)"
                // A few arms time out on their own while the steps go on.
                let timeout = Int.random(in: 0..<10, using: &random) == 0 ? 0.01 : 60
                let reply = await hub.handle(.arm(reader: reader, timeout: timeout, reference: reference), from: client)
                if reply.first?.kind == .armed { armed.append(reference) }
            case 2:
                for reply in await hub.handle(.cancel(reader: Bool.random(using: &random) ? reader : nil), from: client)
                where reply.kind == .cancelled {
                    directEndings[reply["reference"]!.stringValue!, default: []].append("CANCELLED")
                }
            case 3, 4: await hub.swipe(good, reader: reader)
            case 5: await hub.swipe(bad, reader: reader)
            case 6:
                await hub.readerRemoved(id: reader)
                await hub.readerAppeared(id: reader, name: reader)
            default: await Task.yield()
            }
        }
        // What is left ends with a cancel, or with its timeout if that came first.
        for c in 1...3 {
            for reply in await hub.handle(.cancel(reader: nil), from: c) where reply.kind == .cancelled {
                directEndings[reply["reference"]!.stringValue!, default: []].append("CANCELLED")
            }
        }
        var ended = endings(clients, armed: armed)
        for (reference, list) in directEndings { ended[reference, default: []] += list }
        #expect(armed.count > 300)
        let wrong = ended.filter { $0.value.count != 1 }
        #expect(wrong.isEmpty, "arms without exactly one ending: \(wrong.prefix(5))")
        let kinds = Set(ended.values.flatMap { $0 })
        #expect(kinds.isSuperset(of: ["CARD", "CANCELLED", "READER_REMOVED", "SUPERSEDED"]), "\(kinds)")
    }
}
