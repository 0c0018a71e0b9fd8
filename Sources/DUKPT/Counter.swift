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
