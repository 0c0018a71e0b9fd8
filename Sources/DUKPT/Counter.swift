public import Secrets

/// The smallest value above `counter` with at most `maximumOneBits` one-bits, or nil past
/// `last`. Values in between all have more one-bits: adding the lowest set bit of a value with
/// too many skips every value that shares its higher bits.
func nextCounter(after counter: UInt32, last: UInt32, maximumOneBits: Int) -> UInt32? {
    guard counter < last else { return nil }
    var next = counter + 1
    while next.nonzeroBitCount > maximumOneBits {
        let (sum, overflow) = next.addingReportingOverflow(next & (0 &- next))
        if overflow { return nil }
        next = sum
    }
    return next <= last ? next : nil
}

/// A 32-bit value as four big-endian bytes (the counters of KSNs and derivation data).
func bigEndianBytes(_ value: UInt32) -> [UInt8] {
    [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
}

/// CBC with a zero IV over whole blocks, in place, around a block cipher that transforms the
/// block at an offset in place (AES and TDES share it).
func cbc(_ data: inout SecretBytes, blockSize: Int, encrypt: Bool,
         cipher: (inout SecretBytes, Int) throws(DUKPTError) -> Void) throws(DUKPTError) {
    guard data.count % blockSize == 0 else { throw .ciphertextLength(data.count, block: blockSize) }
    if encrypt {
        var offset = 0
        while offset < data.count {
            if offset > 0 { for i in 0..<blockSize { data[offset + i] ^= data[offset - blockSize + i] } }
            try cipher(&data, offset)
            offset += blockSize
        }
    } else {
        var offset = data.count - blockSize
        while offset >= 0 {
            try cipher(&data, offset)
            if offset > 0 { for i in 0..<blockSize { data[offset + i] ^= data[offset - blockSize + i] } }
            offset -= blockSize
        }
    }
}
