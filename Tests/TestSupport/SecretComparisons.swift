public import Secrets

// Tests compare decoded clear data with the test card's text; the product never does.

public func == (a: SecretText, b: String) -> Bool { a.revealed() == b }
public func == (a: SecretText?, b: String?) -> Bool { a?.revealed() == b }
public func == (a: [SecretText], b: [String]) -> Bool { a.map { $0.revealed() } == b }
