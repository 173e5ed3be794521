import Testing

@testable import Node

@Suite struct JSONDuplicateKeysTests {
    @Test(
        "a key named twice in one object is found with its path; the same key in sibling objects, arrays and values is not one",
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
        #expect(JSONDuplicateKeys.first(in: Array(json.utf8)) == expected)
    }
}
