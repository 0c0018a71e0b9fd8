import Testing
import Secrets

/// Copying bytes into a secret: contiguous sources in one copy, any other collection element by
/// element, with the same result.
@Suite("secret bytes copied from collections")
struct SecretBytesTests {
    @Test("an array, a slice of a buffer, an empty array and a collection without contiguous storage")
    func copying() {
        let source: [UInt8] = Array(0..<200).map { UInt8($0 * 7 % 256) }
        let whole = SecretBytes(copying: source).equals(source)
        #expect(whole)
        source.withUnsafeBufferPointer { buffer in
            let slice = buffer[13..<77]
            let same = SecretBytes(copying: slice).equals(Array(slice))
            let shifted = SecretBytes(copying: slice).equals(Array(buffer[12..<76]))
            #expect(same && !shifted)
        }
        let empty = SecretBytes(copying: [UInt8]()).count
        #expect(empty == 0)
        let mapped = source.lazy.map { $0 ^ 0x5A }
        #expect(mapped.withContiguousStorageIfAvailable { _ in true } == nil)
        let copied = SecretBytes(copying: mapped).equals(Array(mapped))
        let unmapped = SecretBytes(copying: mapped).equals(source)
        #expect(copied && !unmapped)
    }
}
