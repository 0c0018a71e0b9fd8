import Testing
import ReaderIO
import ReaderPipeline

@Suite("ALSA capture errors")
struct ALSATests {
    @Test("a PCM name that does not exist is a typed error naming the call, the device and the errno")
    func missing() {
        do {
            _ = try ALSACapture(device: "posmini_no_such_device")
            Issue.record("opened a device that does not exist")
        } catch {
            #expect(error.device == "posmini_no_such_device")
            #expect(error.call == "snd_pcm_open")
            #expect(error.code < 0)
            #expect(!error.isDeviceGone)
            #expect(error.description.contains("posmini_no_such_device"))
        }
    }

    @Test("EBUSY carries the sound-server advice; ENODEV means the reader is gone")
    func advice() {
        let busy = ALSAError(device: "hw:CARD=Device,DEV=0", call: "snd_pcm_open", code: -16)
        #expect(busy.description.contains("sound server"))
        #expect(!busy.isDeviceGone)
        let gone = ALSAError(device: "hw:CARD=Device,DEV=0", call: "snd_pcm_readi", code: -19)
        #expect(gone.isDeviceGone)
        #expect(gone.description.contains("snd_pcm_readi"))
    }

    @Test("a session on a device that fails to start ends at once with the reason")
    func failingSource() {
        final class Broken: CaptureSource, @unchecked Sendable {
            let sampleRate = 44_100, channels = 1, periodFrames = 441, isRealTime = true, overruns = 0
            let name = "broken"
            func start() throws(CaptureEnd) { throw .deviceGone(ALSAError(device: "broken", call: "snd_pcm_start", code: -19)) }
            func waitForData(stop: EventFD) -> Bool { false }
            func read(into buffer: UnsafeMutablePointer<Float>, frames: Int) throws(CaptureEnd) -> Int { 0 }
            func close() {}
        }
        let log = EventLog()
        let session = ReaderSession(source: Broken(), onEvent: log.add)
        session.start()
        #expect(session.isFinished)
        if case .some(.some(.deviceGone(let error))) = log.end { #expect(error.code == -19) } else { Issue.record("ended with \(String(describing: log.end))") }
    }
}
