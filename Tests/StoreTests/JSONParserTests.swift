import Foundation
import Testing

@testable import Store

@Suite struct JSONParserTests {
    static func parse(_ text: String) throws(JSONSyntaxError) -> JSONValue {
        try JSONParser.parse(Array(text.utf8))
    }

    @Test(
        "a key named twice in one object is refused with its path; the same key in sibling objects, arrays and values is not one",
        arguments: [
            (#"{"a":1,"b":2}"#, nil),
            (#"{"a":1,"a":2}"#, "a"),
            (#"{"a":1,"\u0061":2}"#, "a"),
            (#"{"labels":{"zone":"a","zone":"b"}}"#, "labels.zone"),
            (#"{"x":{"k":1},"y":{"k":1}}"#, nil),
            (#"[{"k":1},{"k":2}]"#, nil),
            (#"[{"k":1,"k":2}]"#, "[0].k"),
            (#"{"x":[{"a":1},{"a":1,"a":2}]}"#, "x[1].a"),
            (#"{"a":"{\"a\":1, \"a\":2}","b":["a","a"]}"#, nil),
            (#"{"q\"":1,"q\"":2}"#, #"q""#),
            (#"{"a":{"b":[{"c":1}],"b2":0},"a":0}"#, "a"),
            (#"{"😀":1,"\ud83d\ude00":2}"#, "😀"),
        ] as [(String, String?)])
    func duplicates(json: String, expected: String?) {
        do {
            _ = try Self.parse(json)
            #expect(expected == nil)
        } catch {
            #expect(error.code == .duplicateKey)
            #expect(error.path == expected)
        }
    }

    @Test("an object of 100,000 keys parses in linear time, and a key named twice among them is found")
    func manyKeys() throws {
        let members = (0..<100_000).map { #""k\#($0)":\#($0)"# }
        let started = ContinuousClock.now
        let value = try Self.parse("{" + members.joined(separator: ",") + "}")
        // A scan per key would take minutes here; the set takes well under a second even in a debug build.
        #expect(started.duration(to: .now) < .seconds(10))
        #expect(value["k99999"] == .int(99_999))
        do {
            _ = try Self.parse("{" + members.joined(separator: ",") + #","k17":0}"#)
            Issue.record("the key named twice was not found")
        } catch {
            #expect(error.path == "k17")
        }
    }

    @Test("a number past what its kind holds is refused with where it is, not rounded")
    func numbersOutOfRange() {
        for (text, path) in [
            (#"{"a":[1,{"b":9223372036854775808}]}"#, "a[1].b"), (#"{"a":-9223372036854775809}"#, "a"),
            (#"{"a":1e400}"#, "a"), ("18446744073709551616", ""),
        ] {
            do {
                _ = try Self.parse(text)
                Issue.record("\(text) parsed")
            } catch {
                #expect(error.code == .numberOutOfRange, "\(text)")
                #expect(error.path == path, "\(text)")
            }
        }
    }

    @Test("every key of a path is cut to 64 characters, and array places follow what holds them")
    func longPath() {
        let long = String(repeating: "p", count: 1000)
        do {
            _ = try Self.parse(#"{"\#(long)":[{"x":{"a":1,"a":2}}]}"#)
            Issue.record("the key named twice was not found")
        } catch {
            #expect(error.path == String(repeating: "p", count: 64) + "…[0].x.a")
        }
    }

    @Test("a long key named twice is cut to 64 characters in the path")
    func longDuplicateKey() {
        let key = String(repeating: "k", count: 100)
        #expect(throws: JSONSyntaxError.self) { try Self.parse(#"{"\#(key)":1,"\#(key)":2}"#) }
        do {
            _ = try Self.parse(#"{"\#(key)":1,"\#(key)":2}"#)
        } catch {
            #expect(error.path == String(repeating: "k", count: 64) + "…")
        }
    }

    @Test("values come out as written: key order kept, integers as integers, the rest as doubles")
    func values() throws {
        let value = try Self.parse(
            #" { "z" : [1, -2, 0, 1.5, -0.25e2, 1E3, 9223372036854775807, -9223372036854775808], "a": {"t": true, "f": false, "n": null}, "s": "x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00" } "#
        )
        #expect(
            value
                == .object([
                    (
                        "z",
                        .array([
                            .int(1), .int(-2), .int(0), .double(1.5), .double(-25), .double(1000),
                            .int(Int64.max), .int(Int64.min),
                        ])
                    ),
                    ("a", .object([("t", .bool(true)), ("f", .bool(false)), ("n", .null)])),
                    ("s", .string("x\"\\/\u{8}\u{c}\n\r\té😀")),
                ]))
        #expect(try Self.parse("[]") == .array([]))
        #expect(try Self.parse("{}") == .object([]))
        #expect(try Self.parse(#""""#) == .string(""))
        #expect(try Self.parse("-0") == .int(0))
    }

    @Test(
        "what is not JSON is refused, as Foundation refuses it",
        arguments: [
            "", " ", "{", "}", "[,1]", #"{"a" 1}"#, #"{a:1}"#, "{'a':1}", "01", "1.", ".5", "-",
            "1e", "1e+", "+1", "0x10", "NaN", "Infinity", "tru", "nul", "[1 2]", #"{"a":1} x"#, "\"a", "\"\\x\"",
            "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"a\u{1}b\"", "\"tab\there\"", "1e400",
            "[" + String(repeating: "[", count: 600) + String(repeating: "]", count: 601),
        ])
    func invalid(text: String) {
        #expect(throws: JSONSyntaxError.self, "\(text)") { try Self.parse(text) }
        #expect((try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])) == nil)
    }

    @Test("a comma before a closing bracket is refused (RFC 8259), where Foundation takes it")
    func trailingCommas() {
        for text in ["[1,]", #"{"a":1,}"#] {
            #expect(throws: JSONSyntaxError.self, "\(text)") { try Self.parse(text) }
            #expect((try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])) != nil)
        }
    }

    @Test("bytes that are not UTF-8 inside a string are refused, and no other bytes are taken for JSON")
    func invalidUTF8() throws {
        for bytes: [UInt8] in [
            [0x22, 0xFF, 0x22], [0x22, 0xC3, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22], [0xEF, 0xBB, 0xBF],
        ] {
            #expect(throws: JSONSyntaxError.self, "\(bytes)") { try JSONParser.parse(bytes) }
        }
        #expect(try JSONParser.parse([0x22, 0xC3, 0xA9, 0x22]) == .string("é"))
    }

    @Test("nesting is refused past 512 levels, and accepted up to them")
    func depth() throws {
        let deep = String(repeating: "[", count: 512) + String(repeating: "]", count: 512)
        _ = try Self.parse(deep)
        let deeper = String(repeating: "[", count: 513) + String(repeating: "]", count: 513)
        #expect(throws: JSONSyntaxError.self) { try Self.parse(deeper) }
    }

    @Test("every text JSONValue writes parses back to the same value")
    func roundTrip() throws {
        for value in UInt32(0)..<128 {
            let text = JSONValue.string("a" + String(Character(Unicode.Scalar(value)!)) + "b")
            #expect(try JSONParser.parse(text.serializedBytes()) == text)
        }
        let value = JSONValue.object([
            ("name", .string("web-1")), ("labels", .object([("zone", .string("a"))])), ("cpus", .int(4)),
            ("ratio", .double(0.5)), ("tags", .array([.null, .bool(true)])),
        ])
        #expect(try JSONParser.parse(value.serializedBytes()) == value)
    }
}

@Suite struct JSONValueDecoderTests {
    struct Request: Decodable, Equatable {
        var name: String
        var cpus: Int
        var size: UInt64?
        var ratio: Double?
        var flag: Bool?
        var labels: [String: String]?
        var items: [Item]?

        struct Item: Decodable, Equatable {
            var id: Int8
        }
    }

    static func decode(_ text: String) throws -> Request {
        try JSONValueDecoder().decode(Request.self, from: JSONParser.parse(Array(text.utf8)))
    }

    /// What Foundation's decoder makes of the same text.
    static func foundation(_ text: String) throws -> Request {
        try JSONDecoder().decode(Request.self, from: Data(text.utf8))
    }

    @Test(
        "a body decodes as Foundation's decoder decodes it",
        arguments: [
            #"{"name":"a","cpus":2}"#,
            #"{"name":"a","cpus":2,"size":18446744073709551,"ratio":2,"flag":false,"labels":{"k":"v","é":""},"items":[{"id":-3},{"id":127}],"other":[1]}"#,
            #"{"name":"a","cpus":2,"size":null,"labels":null,"ratio":1.25}"#,
        ])
    func likeFoundation(text: String) throws {
        #expect(try Self.decode(text) == Self.foundation(text))
    }

    @Test(
        "a body that does not fit fails as it fails with Foundation's decoder: the same kind of error at the same field",
        arguments: [
            #"{"cpus":2}"#, #"{"name":"a"}"#, #"{"name":1,"cpus":2}"#, #"{"name":"a","cpus":"2"}"#,
            #"{"name":null,"cpus":2}"#, #"{"name":"a","cpus":2,"labels":{"k":1}}"#,
            #"{"name":"a","cpus":2,"labels":[]}"#,
            #"{"name":"a","cpus":2,"items":[{"id":128}]}"#, #"{"name":"a","cpus":2,"items":[{}]}"#,
            #"{"name":"a","cpus":2,"size":-1}"#, #"{"name":"a","cpus":1e30}"#, #"{"name":"a","cpus":2.5}"#,
            #"{"name":"a","cpus":2,"flag":1}"#, "[1]", "1", "null",
        ])
    func failsLikeFoundation(text: String) {
        func shape(_ error: any Error) -> String {
            guard let error = error as? DecodingError else { return "not a DecodingError: \(error)" }
            func path(_ context: DecodingError.Context) -> String {
                context.codingPath.map(\.stringValue).joined(separator: ".")
            }
            switch error {
            case .keyNotFound(let key, let context): return "keyNotFound \(path(context)) \(key.stringValue)"
            case .typeMismatch(_, let context): return "typeMismatch \(path(context))"
            case .valueNotFound(_, let context): return "valueNotFound \(path(context))"
            // Foundation names no field for a number the field cannot hold: ours does.
            case .dataCorrupted(let context): return "dataCorrupted" + (context.codingPath.isEmpty ? "" : " at a field")
            @unknown default: return "unknown"
            }
        }
        var ours = "decoded", theirs = "decoded"
        do { _ = try Self.decode(text) } catch { ours = shape(error) }
        do { _ = try Self.foundation(text) } catch { theirs = shape(error) }
        #expect(ours == theirs || (ours == "dataCorrupted at a field" && theirs == "dataCorrupted"), "\(text)")
        #expect(ours != "decoded")
    }
}
