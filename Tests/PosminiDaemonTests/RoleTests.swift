import PosminiProtocol
import Testing
@testable import PosminiDaemon
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Who may do what on the socket (docs/PROTOCOL.md, "Roles"), at the hub: POS users arm, cancel
/// their own arm, watch, ask status and bind readers to themselves; a bound reader is its
/// owner's (and the admins'); only admins release. A refused request changes nothing.
@Suite("Roles: POS users and admins")
struct RoleTests {
    /// A hub with reader r1, POS users 1000 (client 1) and 1001 (client 2), an admin (client 3,
    /// uid 2000 in the admin group) and root (client 4).
    func makeHub(releaser: ReaderHub.Releaser? = nil, bindingsPath: String? = nil) async
        -> (ReaderHub, a: RecordingClient, b: RecordingClient, admin: RecordingClient, root: RecordingClient) {
        let hub = ReaderHub(bindingsPath: bindingsPath)
        await hub.readerAppeared(id: "r1", name: "one")
        let a = RecordingClient(1, uid: 1000), b = RecordingClient(2, uid: 1001)
        let admin = RecordingClient(3, uid: 2000, admin: true), root = RecordingClient(4, uid: 0, admin: true)
        for c in [a, b, admin, root] { _ = await hub.connect(c) }
        if let releaser { await hub.setReleaser(releaser) }
        return (hub, a, b, admin, root)
    }

    @Test("the steal sequence: B's release, release 0, arm and bind are refused; A stays armed and gets the card, B nothing")
    func steal() async throws {
        let calls = CallLog()
        let (hub, a, b, _, _) = await makeHub { reader, seconds in calls.add("\(reader) \(Int(seconds))"); return nil }
        #expect(await hub.handle(.arm(reader: "r1", timeout: nil, reference: "sale-1"), from: 1).first?.kind == .armed)
        #expect(await hub.handle(.release(reader: "r1", seconds: 900), from: 2).first?["code"] == "not_permitted")
        #expect(await hub.handle(.release(reader: "r1", seconds: 0), from: 2).first?["code"] == "not_permitted")
        #expect(await hub.handle(.arm(reader: "r1", timeout: nil, reference: nil), from: 2).first?["code"] == "reader_busy")
        #expect(await hub.handle(.bind("r1"), from: 2).first?["code"] == "reader_busy")
        #expect(calls.list.isEmpty, "a refused release never reaches the device")
        #expect(a.received.isEmpty, "A was told nothing: \(a.received.map(\.text))")
        await hub.swipe(decodedSwipe(), reader: "r1")
        #expect(a.classes == ["CARD"])
        #expect(a.received.first?["reference"] == "sale-1")
        #expect(b.received.isEmpty)
    }

    @Test("an admin's release that the device refuses changes nothing: the arm stays")
    func refusedReleaseKeepsArm() async throws {
        let (hub, a, _, admin, _) = await makeHub { _, _ in "a recording has no device to release" }
        _ = await hub.handle(.arm(reader: "r1", timeout: nil, reference: nil), from: 1)
        #expect(await hub.handle(.release(reader: "r1", seconds: 60), from: 3).first?["code"] == "not_releasable")
        #expect(a.received.isEmpty, "A was told nothing")
        #expect(admin.received.isEmpty)
        let status = try #require(await hub.handle(.status, from: 1).first)
        #expect(status["armed"] == 1)
        await hub.swipe(decodedSwipe(), reader: "r1")
        #expect(a.classes.last == "CARD")
    }

    @Test("a release ends when the connection that asked for it closes, and after its seconds")
    func releaseEndsWithConnection() async throws {
        let calls = CallLog()
        let (hub, a, _, admin, root) = await makeHub { reader, seconds in calls.add("\(reader) \(Int(seconds))"); return nil }
        _ = await hub.handle(.arm(reader: "r1", timeout: nil, reference: "s"), from: 1)
        #expect(await hub.handle(.release(reader: "r1", seconds: 900), from: 3).first?.kind == .released)
        #expect(a.received.last?.kind == .readerRemoved)
        #expect(await hub.handle(.arm(reader: "r1", timeout: nil, reference: nil), from: 1).first?["code"] == "reader_unavailable")
        await hub.disconnect(admin.clientID)
        #expect(calls.list == ["r1 900", "r1 0"])
        // Taken back when its seconds pass (the reader captures again): the asker's later
        // disconnect has nothing left to end.
        await hub.readerCapturing(id: "r1", true)
        #expect(await hub.handle(.release(reader: "r1", seconds: 5), from: 4).first?.kind == .released)
        await hub.readerCapturing(id: "r1", true)
        await hub.disconnect(root.clientID)
        #expect(calls.list == ["r1 900", "r1 0", "r1 5"])
    }

    @Test("bindings: a POS user binds to itself; another POS user can neither arm, bind nor unbind it; the owner and admins can")
    func bindings() async throws {
        let (hub, a, b, admin, _) = await makeHub()
        #expect(await hub.handle(.bind("r1"), from: 1).first?.kind == .bound)
        #expect(await hub.handle(.bind("r1"), from: 1).first?.kind == .bound, "binding again is harmless")
        #expect(await hub.handle(.arm(reader: "r1", timeout: nil, reference: nil), from: 2).first?["code"] == "not_permitted")
        #expect(await hub.handle(.arm(reader: nil, timeout: nil, reference: nil), from: 2).first?["code"] == "not_permitted",
                "the only reader, chosen for B, is still A's")
        #expect(await hub.handle(.unbind("r1"), from: 2).first?["code"] == "not_permitted")
        #expect(await hub.handle(.bind("r1"), from: 2).first?["code"] == "not_permitted")
        #expect(b.received.isEmpty)
        // The owner arms; an admin may too once it is free.
        #expect(await hub.handle(.arm(reader: "r1", timeout: nil, reference: nil), from: 1).first?.kind == .armed)
        _ = await hub.handle(.cancel(reader: nil), from: 1)
        #expect(await hub.handle(.arm(reader: "r1", timeout: nil, reference: nil), from: 3).first?.kind == .armed)
        _ = await hub.handle(.cancel(reader: nil), from: 3)
        #expect(await hub.handle(.unbind("r1"), from: 3).first?.kind == .unbound)
        #expect(await hub.handle(.arm(reader: "r1", timeout: nil, reference: nil), from: 2).first?.kind == .armed)
        _ = a
        _ = admin
    }

    @Test("every role × command: what a POS user, an admin and root may do")
    func matrix() async throws {
        let (hub, _, _, _, _) = await makeHub { _, _ in nil }
        // POS user 1001 (client 2), admin (3), root (4).
        for client in [2, 3, 4] {
            #expect(await hub.handle(.watch(true), from: client).first?.kind == .watch)
            #expect(await hub.handle(.status, from: client).first?.kind == .status)
            #expect(await hub.handle(.arm(reader: "r1", timeout: nil, reference: nil), from: client).first?.kind == .armed)
            #expect(await hub.handle(.cancel(reader: nil), from: client).first?.kind == .cancelled)
            #expect(await hub.handle(.bind("r1"), from: client).first?.kind == .bound)
            #expect(await hub.handle(.unbind("r1"), from: client).first?.kind == .unbound)
        }
        #expect(await hub.handle(.release(reader: "r1", seconds: 10), from: 2).first?["code"] == "not_permitted")
        #expect(await hub.handle(.release(reader: "r1", seconds: 10), from: 3).first?.kind == .released)
        #expect(await hub.handle(.release(reader: "r1", seconds: 0), from: 4).first?.kind == .released)
        // Another user's arm cannot be cancelled: cancel is for one's own.
        _ = await hub.handle(.arm(reader: "r1", timeout: nil, reference: nil), from: 1)
        #expect(await hub.handle(.cancel(reader: nil), from: 2).first?["code"] == "not_armed")
    }

    @Test("a 0.5.0 bindings file: its bindings become the admins', written back with owners; owners survive a restart")
    func ownerlessFile() async throws {
        let path = "/tmp/posmini-role-bindings-\(getpid())"
        defer { unlink(path) }
        let file = fopen(path, "w")!
        fputs("r1\nr2\n", file)
        fclose(file)
        let (hub, _, _, _, _) = await makeHub(bindingsPath: path)
        #expect(hub.ownerlessBindings == 2)
        #expect(readText(path).contains("r1\tadmin\n"), "\(readText(path))")
        #expect(await hub.handle(.unbind("r1"), from: 1).first?["code"] == "not_permitted")
        #expect(await hub.handle(.arm(reader: "r1", timeout: nil, reference: nil), from: 1).first?["code"] == "not_permitted")
        #expect(await hub.handle(.unbind("r1"), from: 3).first?.kind == .unbound)
        #expect(await hub.handle(.bind("r1"), from: 1).first?.kind == .bound)
        let (again, _, _, _, _) = await makeHub(bindingsPath: path)
        #expect(again.ownerlessBindings == 0)
        #expect(await again.handle(.unbind("r1"), from: 2).first?["code"] == "not_permitted")
        #expect(await again.handle(.unbind("r1"), from: 1).first?.kind == .unbound)
        #expect(!readText(path).contains("r1\t"))
        #expect(readText(path).contains("r2\tadmin\n"))
    }
}
