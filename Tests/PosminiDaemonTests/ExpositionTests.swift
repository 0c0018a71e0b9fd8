import PosminiMetrics
import Testing

@Suite("Prometheus text exposition")
struct ExpositionTests {
    @Test("HELP and TYPE before the samples, label values escaped, integers without a fraction, +Inf and NaN spelled as Prometheus does")
    func format() {
        var e = Exposition()
        e.family("posminid_x_total", .counter, help: "A count\\with a backslash.")
        e.sample("posminid_x_total", ["reader": "a \"b\"\\c\nd"], 3)
        e.family("posminid_y", .gauge, help: "A gauge.")
        e.sample("posminid_y", [:], 0.25)
        e.sample("posminid_y", ["k": "v"], .infinity)
        e.sample("posminid_y", ["k": "w"], .nan)
        #expect(e.text == """
        # HELP posminid_x_total A count\\\\with a backslash.
        # TYPE posminid_x_total counter
        posminid_x_total{reader="a \\"b\\"\\\\c\\nd"} 3
        # HELP posminid_y A gauge.
        # TYPE posminid_y gauge
        posminid_y 0.25
        posminid_y{k="v"} +Inf
        posminid_y{k="w"} NaN

        """)
        #expect(Exposition.isValidName("posminid_swipes_total") && Exposition.isValidName("a:b_9"))
        #expect(!Exposition.isValidName("9a") && !Exposition.isValidName("a-b") && !Exposition.isValidName(""))
    }

    @Test("a histogram's buckets are cumulative, +Inf counts everything, a value on a bound falls in it, NaN is not counted")
    func histogram() {
        var h = Histogram(bounds: [1, 2, 5])
        for x in [0.5, 1, 1.5, 7, .nan] { h.observe(x) }
        #expect(h.count == 4 && h.sum == 10 && h.counts == [2, 1, 0])
        var e = Exposition()
        e.family("posminid_h", .histogram, help: "H.")
        e.histogram("posminid_h", [("reader", "r")], h)
        #expect(e.text.contains("posminid_h_bucket{reader=\"r\",le=\"1\"} 2\nposminid_h_bucket{reader=\"r\",le=\"2\"} 3\nposminid_h_bucket{reader=\"r\",le=\"5\"} 3\nposminid_h_bucket{reader=\"r\",le=\"+Inf\"} 4\nposminid_h_sum{reader=\"r\"} 10\nposminid_h_count{reader=\"r\"} 4\n"))
    }

    @Test("jack flaps never go down: a jack watch that starts again at 0 adds its new count to the total")
    func jackFlapsAccumulate() {
        var m = ReaderMetrics()
        for count in [1, 3, 3, 0, 2, 2, 5] { m.jackCount(count) }
        #expect(m.jackFlaps == 3 + 2 + 3)
    }
}
