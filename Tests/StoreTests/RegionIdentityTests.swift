import Foundation
import GRDB
import Schema
import TestSupport
import Testing

@testable import Store

/// The `region.identified` record in the views: the first one applied is the region's id, alike
/// on every member and in views rebuilt from the log; views know it from schema 010 on.
@Suite struct RegionIdentityTests {
    @Test("the first region.identified record gives the region its id; a later one changes nothing, in a rebuild too")
    func firstRecordWins() throws {
        let dir = TemporaryDirectory()
        let records = [
            Record(at: 1, .hostAdded(HostAdded(name: "h1", region: "eu", cpus: 4, memoryBytes: 8 << 30))),
            Record(at: 2, .regionIdentified(RegionIdentified(regionID: 0x0123_4567_89ab_cdef))),
            Record(at: 3, .regionIdentified(RegionIdentified(regionID: 42))),
        ]
        let views = try ViewStore(path: dir.file("views.sqlite"))
        _ = try views.apply(ViewStoreTests.entries(Array(records.prefix(1))))
        #expect(try views.pool.read { try ViewStore.regionID($0) } == nil)
        _ = try views.apply(ViewStoreTests.entries(Array(records.dropFirst()), from: 2))
        #expect(try views.pool.read { try ViewStore.regionID($0) } == 0x0123_4567_89ab_cdef)
        let text = try views.pool.read { try String.fetchOne($0, sql: "SELECT region_id FROM dwcp_state") }
        #expect(text == "0123456789abcdef")
        // The same log, applied one entry at a time into new views, gives the same id.
        let again = try ViewStore(path: dir.file("again.sqlite"))
        for entry in ViewStoreTests.entries(records) { _ = try again.apply([entry]) }
        #expect(try again.pool.read { try ViewStore.regionID($0) } == 0x0123_4567_89ab_cdef)
    }

    @Test("views know region.identified records from schema 010 on; a version this build does not know counts as not")
    func schemaGate() {
        for count in 0..<10 {
            #expect(!ViewStore.knowsRegionIdentity(schemaVersion: Schema.version(ofFirst: count)), "\(count)")
        }
        #expect(ViewStore.knowsRegionIdentity(schemaVersion: Schema.version(ofFirst: 10)))
        #expect(ViewStore.knowsRegionIdentity(schemaVersion: ViewStore.schemaVersion))
        #expect(!ViewStore.knowsRegionIdentity(schemaVersion: "a-later-or-edited-one"))
    }
}
