"""Black-box: the tracking page without link_secret.

No link can be signed without link_secret, so the page is off: GET /t,
POST /t (also with the right order number and postcode) and GET /t/{token}
answer 404 saying that tracking is not set up and that link_secret is what
is missing, never "no order with these details" for details that are
right, and none of it counts as a failed lookup (no 429 however often it is
asked). The daemon says so in its log at start."""
import os
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import csbb  # noqa: E402

a = csbb.args()
t = csbb.Checker()
d = csbb.Daemon(a.bin, extra_env={"CONSONANCE_TRACKING_LOOKUPS": "2",
                                   "CONSONANCE_DEFAULT_LOCALE": "en"})
try:
    d.start()
    order = csbb.order_event("o-77-placed", "77", customer="c-77")
    order["data"]["shipping"] = {"destination": {"postal_code": "01067", "country": "DE"}}
    st, _, body = d.post_events([order])
    t.check(st in (200, 201, 202), "order accepted: %s %s" % (st, body))

    st, _, page = d.request("GET", "/t?lang=en", key=False)
    t.eq(st, 404, "GET /t without link_secret")
    t.check("Order tracking is not set up here." in page, "GET /t says tracking is off: " + page[-600:])
    t.check("link_secret is not set; expected a random string of at least 16 characters" in page,
            "GET /t names link_secret and what it expects")
    t.check("<form" not in page, "GET /t shows no form that cannot work")

    form = urllib.parse.urlencode({"order": "77", "key": "01067", "lang": "en"})
    for i in range(6):  # past tracking_lookups (2): nothing is counted
        st, _, page = d.request("POST", "/t", form,
                                {"Content-Type": "application/x-www-form-urlencoded"}, key=False)
        t.eq(st, 404, "POST /t with the right details, try %d" % (i + 1))
        t.check("We found no order" not in page, "right details are not called wrong")
        t.check("link_secret is not set" in page, "POST /t names link_secret")

    st, _, page = d.request("GET", "/t/3737-0123456789abcdef?lang=de", key=False)
    t.eq(st, 404, "GET /t/{token} without link_secret")
    t.check("Die Sendungsverfolgung ist hier nicht eingerichtet." in page,
            "GET /t/{token} says tracking is off, in German")
    t.check("link_secret ist nicht gesetzt" in page, "GET /t/{token} names link_secret")

    t.check("tracking page off (GET /t answers 404): link_secret is not set" in d.read_log(),
            "the daemon's log says why the tracking page is off")
finally:
    d.stop()
    d.cleanup()
t.done()
