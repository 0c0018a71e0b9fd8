import Testing
import NIOCore
import NIOTestUtils
@testable import PosminiDaemon

/// The socket's line decoder under every way the kernel may cut the stream into reads: the
/// verifier feeds each input whole, byte by byte, in random chunks, and between guard bytes.
@Suite("Socket: the line decoder, however the stream is cut")
struct LineDecoderTests {
    static let maximum = 16

    func line(_ text: String) -> LineEvent { .line(Array(text.utf8)) }

    func verify(_ pairs: [(String, [LineEvent])]) throws {
        let allocator = ByteBufferAllocator()
        let inputs = pairs.map { (input, output) in (allocator.buffer(string: input), output) }
        // Throws, naming the input and the production, when any cutting gives other output. The
        // pairs are also fed one after another in several orders: each must end its own lines.
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: inputs) {
            LineDecoder(maximum: Self.maximum)
        }
    }

    @Test("lines end at LF or CRLF; a line of exactly the limit passes, also with its CR")
    func lines() throws {
        try verify([
            ("{\"cmd\":\"status\"}\n", [line("{\"cmd\":\"status\"}")]),
            ("a\nbb\r\n\n", [line("a"), line("bb"), line("")]),
            (String(repeating: "x", count: 16) + "\r\n", [line(String(repeating: "x", count: 16))]),
        ])
    }

    @Test("a line over the limit gives one tooLong, its tail never becomes a line, and the next line reads")
    func overlong() throws {
        try verify([
            (String(repeating: "y", count: 17) + "\n", [.tooLong]),
            (String(repeating: "z", count: 40) + "\nok\n", [.tooLong, line("ok")]),
            (String(repeating: "w", count: 16) + "\rx\n", [.tooLong]),
        ])
    }
}
