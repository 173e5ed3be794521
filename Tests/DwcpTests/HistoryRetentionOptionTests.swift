import Testing

@testable import dwcp

@Suite struct HistoryRetentionOptionTests {
    @Test("--history-retention takes seconds, minutes, hours or days, at least 10 s; 0 keeps everything")
    func parses() throws {
        #expect(try parseRetention("0") == nil)
        #expect(try parseRetention("10s") == .seconds(10))
        #expect(try parseRetention("90m") == .seconds(5_400))
        #expect(try parseRetention("12h") == .seconds(43_200))
        #expect(try parseRetention("7d") == .seconds(604_800))
        for bad in ["", "d", "7", "9s", "0d", "-1h", "1.5h", "7 d", "1w", "36501d", "+50s", "١٠s"] {
            #expect(throws: (any Error).self, "\(bad)") { try parseRetention(bad) }
        }
    }

    @Test("--verify-every takes the same durations, at least 1 s; 0 never verifies; a refusal names the flag")
    func verifyEvery() throws {
        #expect(try parseVerifyEvery("0") == nil)
        #expect(try parseVerifyEvery("1s") == .seconds(1))
        #expect(try parseVerifyEvery("1h") == .seconds(3_600))
        let far = #expect(throws: (any Error).self) { try parseVerifyEvery("1000000h") }
        #expect("\(String(describing: far))".contains("longer than 100 years"), "\(String(describing: far))")
        for bad in ["0s", "1", "h", "-1h", "1.5h"] {
            let error = #expect(throws: (any Error).self, "\(bad)") { try parseVerifyEvery(bad) }
            #expect("\(String(describing: error))".contains("--verify-every"), "\(String(describing: error))")
        }
    }
}
