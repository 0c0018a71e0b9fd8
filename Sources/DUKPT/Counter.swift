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

/// How many counter values from `first` to `last` (both included) have at most `maximumOneBits`
/// one-bits: the transactions a key has left when `first` is its next counter.
func countersLeft(from first: UInt32, last: UInt32, maximumOneBits: Int) -> Int {
    guard first <= last else { return 0 }
    let below = first == 0 ? 0 : countAtMost(first - 1, maximumOneBits)
    return countAtMost(last, maximumOneBits) - below
}

/// Values from 0 to `x` with at most `k` one-bits: for each one-bit of `x`, from the top, the
/// values that share the bits above it and have a zero there are free in the bits below.
private func countAtMost(_ x: UInt32, _ k: Int) -> Int {
    var total = 0, onesAbove = 0
    for bit in stride(from: 31, through: 0, by: -1) where x & (1 << UInt32(bit)) != 0 {
        let room = k - onesAbove
        if room >= 0 { for j in 0...min(room, bit) { total += binomial(bit, j) } }
        onesAbove += 1
    }
    if onesAbove <= k { total += 1 }
    return total
}

private func binomial(_ n: Int, _ k: Int) -> Int {
    guard k >= 0, k <= n else { return 0 }
    var r = 1
    for i in 0..<min(k, n - k) { r = r * (n - i) / (i + 1) }
    return r
}

extension DUKPTScheme {
    /// Transactions left with `next` as the next counter to use (nil: exhausted).
    public func transactionsLeft(next: UInt32?) -> Int {
        guard let next else { return 0 }
        switch self {
        case .aes128: return countersLeft(from: next, last: AESDUKPT.lastCounter, maximumOneBits: AESDUKPT.maximumOneBits)
        case .tdes: return countersLeft(from: next, last: TDESDUKPT.lastCounter, maximumOneBits: TDESDUKPT.maximumOneBits)
        }
    }
}
