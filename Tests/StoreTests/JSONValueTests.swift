import Foundation
import Testing

@testable import Store

@Suite struct JSONValueTests {
    @Test func stringsThatNeedNoEscapeAreWrittenAsTheyAre() {
        #expect(JSONValue.string("web-1").serialized() == #""web-1""#)
        #expect(JSONValue.string("").serialized() == #""""#)
        #expect(JSONValue.string("zürich ☃").serialized() == "\"zürich ☃\"")
    }

    @Test func quotesBackslashesAndControlCharactersAreEscaped() {
        #expect(JSONValue.string("a\"b").serialized() == #""a\"b""#)
        #expect(JSONValue.string("a\\b").serialized() == #""a\\b""#)
        #expect(JSONValue.string("l1\nl2\tx\r").serialized() == #""l1\nl2\tx\r""#)
        #expect(JSONValue.string("bell\u{7}").serialized() == #""bell\u0007""#)
        #expect(JSONValue.string("ü\"\u{1f}").serialized() == "\"ü\\\"\\u001f\"")
    }

    @Test func everyASCIICharacterSurvivesARoundTrip() throws {
        // A character written raw that JSON forbids (a control character) fails the parse.
        for value in UInt32(0)..<128 {
            let text = "a" + String(Character(Unicode.Scalar(value)!)) + "b"
            #expect(try JSONValue.parse(JSONValue.string(text).serialized()) == .string(text), "\(value)")
        }
    }

    @Test func writtenTextParsesBackToTheSameValue() throws {
        let value = JSONValue.object([
            ("name", .string("h\"1\\\n")), ("labels", .object([("k", .string("v ☃"))])), ("cpus", .int(8)),
            ("ok", .bool(true)), ("none", .null), ("list", .array([.int(1), .string("\u{0}")])),
        ])
        // `parse` sorts object keys; compare with the keys sorted.
        let sorted = JSONValue.object([
            ("cpus", .int(8)), ("labels", .object([("k", .string("v ☃"))])),
            ("list", .array([.int(1), .string("\u{0}")])), ("name", .string("h\"1\\\n")), ("none", .null),
            ("ok", .bool(true)),
        ])
        #expect(try JSONValue.parse(value.serialized()) == sorted)
    }

    @Test(
        "integers parse exactly, above 2^53 and below -2^53 too (a SQL answer's 64-bit values); doubles parse to the double their text names"
    )
    func numbersParseExactly() throws {
        for n: Int64 in [9_007_199_254_740_993, .max, .min, -9_007_199_254_740_993, -3, 0] {
            #expect(try JSONValue.parse(String(n)) == .int(n), "\(n)")
        }
        #expect(try JSONValue.parse("2.5") == .double(2.5))
        #expect(try JSONValue.parse("[1e300]") == .array([.double(1e300)]))
        #expect(try JSONValue.parse("2.0") == .double(2))
        // Foundation's reader on Linux gave 1.0000000000000004, 0.3000000000000001 and
        // 0.12345678901234565 for these (dwcp sql printed them so).
        for text in ["1.0000000000000002", "0.30000000000000004", "0.12345678901234568", "-2.2250738585072014e-308"] {
            let value = try JSONValue.parse(text)
            #expect(value == .double(Double(text)!), "\(text)")
        }
    }
}
