import Testing
import ReaderIO
import ReaderPipeline
@testable import PosminiDaemon

/// The reader registry's transitions, on their own: no device, no clock, no daemon. A session
/// is an integer here.
@Suite("reader registry: one slot per reader, its lifecycle changed only by transitions")
struct ReaderRegistryTests {
    static let card = SoundCard(syspath: "/sys/devices/pci0000:00/sound/card1", number: 1, cardID: "PCH")

    @Test("a configured card waits for its card, watches its jack, captures, and goes back to waiting")
    func configuredCard() {
        var r = ReaderRegistry<Int>()
        r.register("hw:CARD=PCH", kind: .configuredCard)
        #expect(r.lifecycle("hw:CARD=PCH") == .waitingForCard)
        r.cardFound("hw:CARD=PCH", card: Self.card)
        #expect(r.lifecycle("hw:CARD=PCH") == .watchingJack)
        #expect(r.reader(atSyspath: Self.card.syspath) == "hw:CARD=PCH")
        r.useDevice("hw:CARD=PCH", "hw:1")
        let token = r.began("hw:CARD=PCH", session: 7)
        #expect(r.lifecycle("hw:CARD=PCH") == .capturing(token: token))
        #expect(r.session("hw:CARD=PCH") == 7)
        // The jack comes out: the session is handed back, the jack watched again.
        let v1 = r.stop("hw:CARD=PCH")
        #expect(v1 == 7)
        #expect(r.lifecycle("hw:CARD=PCH") == .watchingJack)
        #expect(r.session("hw:CARD=PCH") == nil)
        let v2 = r.stop("hw:CARD=PCH")
        #expect(v2 == nil, "nothing to stop twice")
        // The card goes: waiting for it again, found by nobody at its path.
        _ = r.began("hw:CARD=PCH", session: 8)
        let v3 = r.cardLost("hw:CARD=PCH")
        #expect(v3 == 8)
        #expect(r.lifecycle("hw:CARD=PCH") == .waitingForCard)
        #expect(r.reader(atSyspath: Self.card.syspath) == nil)
        #expect(r.device("hw:CARD=PCH") == "hw:1", "the device is kept for the next time")
    }

    @Test("a session that ended is let go only by its own token; a newer session stays")
    func tokens() {
        var r = ReaderRegistry<Int>()
        r.register("pulse", kind: .plainDevice)
        #expect(r.lifecycle("pulse") == .stopped)
        let first = r.began("pulse", session: 1)
        let v4 = r.stop("pulse")
        #expect(v4 == 1)
        let second = r.began("pulse", session: 2)
        #expect(second != first, "every token is new")
        let v5 = r.ended("pulse", token: first)
        #expect(v5 == nil, "the old session's end does not touch the new one")
        #expect(r.lifecycle("pulse") == .capturing(token: second))
        let v6 = r.ended("pulse", token: second)
        #expect(v6 == 2)
        #expect(r.lifecycle("pulse") == .stopped)
        let v7 = r.ended("pulse", token: second)
        #expect(v7 == nil, "an end is taken once")
    }

    @Test("a failure retries with back-off; only the pending retry comes due; running clears it")
    func retries() {
        var r = ReaderRegistry<Int>()
        r.register("pulse", kind: .plainDevice, device: "pulse")
        let one = r.failed("pulse", reason: "busy")
        #expect(one.attempt == 1 && one.newReason)
        #expect(r.lifecycle("pulse") == .retrying(token: one.token))
        let two = r.failed("pulse", reason: "busy")
        #expect(two.attempt == 2 && !two.newReason, "the same reason is not new")
        let v8 = r.retryDue("pulse", token: one.token)
        #expect(!v8, "a superseded retry does nothing")
        let v9 = r.retryDue("pulse", token: two.token)
        #expect(v9)
        #expect(r.lifecycle("pulse") == .stopped)
        let v10 = r.retryDue("pulse", token: two.token)
        #expect(!v10, "a retry comes due once")
        let three = r.failed("pulse", reason: "gone")
        #expect(three.attempt == 3 && three.newReason)
        _ = r.retryDue("pulse", token: three.token)
        _ = r.began("pulse", session: 1)
        let v11 = r.running("pulse")
        #expect(v11, "capturing again after failures")
        let v12 = r.running("pulse")
        #expect(!v12, "said once")
        let v13 = r.failed("pulse", reason: "gone")
        #expect(v13.attempt == 1, "the back-off starts over")
        r.abandonRetries("pulse")
        let v14 = r.failed("pulse", reason: "gone")
        #expect(v14.attempt == 1, "abandoned: no back-off carried over")
    }

    @Test("a release stops the session and holds the reader; only its own token reopens it")
    func release() {
        var r = ReaderRegistry<Int>()
        r.register("usb-1", kind: .markedCard)
        r.cardFound("usb-1", card: Self.card)
        r.useDevice("usb-1", "hw:1")
        _ = r.began("usb-1", session: 5)
        let (token, session) = r.release("usb-1")
        #expect(session == 5)
        #expect(r.lifecycle("usb-1") == .released(token: token))
        #expect(r.isReleased("usb-1"))
        // A second release (0 s: reopen now) supersedes the first.
        let (again, none) = r.release("usb-1")
        #expect(none == nil)
        let v15 = r.reopenDue("usb-1", token: token)
        #expect(!v15, "the first release's timer does nothing")
        let v16 = r.reopenDue("usb-1", token: again)
        #expect(v16)
        #expect(r.lifecycle("usb-1") == .stopped)
        #expect(!r.isReleased("usb-1"))
        // A failure while released cannot be retried into capture before the release is due.
        let (held, _) = r.release("usb-1")
        let v17 = r.retryDue("usb-1", token: held)
        #expect(!v17)
        #expect(r.isReleased("usb-1"))
    }

    @Test("counters of ended sessions add up per reader, and survive the slot's sessions")
    func past() {
        var r = ReaderRegistry<Int>()
        r.register("replay", kind: .replay)
        r.retire("replay", statistics: ReaderStatistics(framesCaptured: 10, overruns: 1, dropped: 0, gaps: 0, swipes: 2))
        r.retire("replay", statistics: ReaderStatistics(framesCaptured: 5, overruns: 0, dropped: 3, gaps: 1, swipes: 1))
        let past = r.past("replay")
        #expect(past?.framesCaptured == 15 && past?.overruns == 1 && past?.dropped == 3 && past?.gaps == 1 && past?.swipes == 3)
        r.retire("unknown", statistics: ReaderStatistics(framesCaptured: 1, overruns: 0, dropped: 0, gaps: 0, swipes: 0))
        #expect(r.past("unknown") == nil, "no slot, no counters")
        // Registering again keeps the slot, its past, and changes the kind (udev gone: plain).
        r.register("replay", kind: .plainDevice, device: "pulse")
        #expect(r.kind("replay") == .plainDevice && r.past("replay")?.swipes == 3)
        _ = r.began("replay", session: 1)
        r.register("other", kind: .plainDevice)
        _ = r.began("other", session: 2)
        let v18 = r.stopAll()
        #expect(Set(v18) == [1, 2])
        #expect(r.sessions.isEmpty)
    }
}
