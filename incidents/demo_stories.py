"""Failure stories behind the demo data, told blamelessly. Times are minutes after the start.

Each story is a plain dict so the seed command can vary it (services, teams, dates) while the
words stay realistic. Evidence refers to timeline entries by their index in `timeline`.
"""

STORIES = [
    {
        "titles": [
            "Checkout errors after a config deploy",
            "Checkout 500s during a canary rollout",
            "Payment page failures after release",
        ],
        "severity": "SEV2",
        "services": ["checkout", "payments-api"],
        "teams": ["payments"],
        "tags": ["deploy", "config"],
        "summary": "A configuration change shipped with the release pointed checkout at a payment "
        "provider endpoint that had been retired. About a third of checkouts failed for "
        "47 minutes until the change was rolled back.",
        "impact": "Roughly **31%** of checkout attempts returned an error for 47 minutes. "
        "About 2,400 customers saw a failure; most retried successfully after the rollback. "
        "No payments were double-charged.",
        "narrative": "The release bundled application code with a configuration file. The config "
        "linter checked the syntax but not whether the endpoint still existed. The canary "
        "took 5% of traffic, but its error-rate alert compares against a 1-hour baseline "
        "and needed 15 minutes of data before it could fire.",
        "timeline": [
            (0, "action", "Release `2026.03.2` starts rolling out, including `payments.yaml`."),
            (6, "alert", "Canary error rate above 2% — alert fires in `#payments-alerts`."),
            (9, "detection", "On-call engineer acknowledges and opens the checkout dashboard."),
            (14, "decision", "Team decides to pause the rollout while looking at logs."),
            (18, "status_update", "Status page: *Investigating elevated checkout errors*."),
            (25, "escalation", "Payments provider contact paged to confirm endpoint status."),
            (
                33,
                "action",
                "Log search shows `connection refused` to `legacy-gw.provider.example`.",
            ),
            (41, "mitigation", "Rollback of the release started."),
            (47, "resolution", "Error rate back to baseline; rollback complete."),
            (55, "status_update", "Status page: *Resolved*. Customers can retry their orders."),
        ],
        "factors": [
            (
                "change",
                "Configuration and code ship in one release, so a config change cannot be "
                "rolled back or canaried on its own.",
                [0],
            ),
            (
                "monitoring",
                "The canary alert needs a long baseline and fired only after a large share "
                "of traffic was already affected.",
                [1, 2],
            ),
            (
                "dependency",
                "The provider's endpoint retirement notice went to a shared inbox nobody watches.",
                [5, 6],
            ),
        ],
        "actions": [
            ("Validate provider endpoints in the config linter", "prevent", "high"),
            ("Ship configuration through its own pipeline with canarying", "prevent", "medium"),
            ("Alert on canary error rate relative to the control group", "detect", "high"),
            ("Route provider notices to the payments team's queue", "process", "low"),
        ],
        "went_well": "The rollback path was well rehearsed and took six minutes. Support had a "
        "macro ready for affected customers.",
        "lucky": "It happened at 09:00 UTC, before the US peak.",
        "lessons": "A linter that checks syntax gives a feeling of safety it cannot back up.",
    },
    {
        "titles": [
            "Production database deleted during maintenance",
            "Primary database dropped; restore from backup",
            "Data loss after a cleanup script ran against production",
        ],
        "severity": "SEV1",
        "services": ["orders-db", "orders-api"],
        "teams": ["platform", "data"],
        "tags": ["database", "backups", "data-loss"],
        "summary": "A maintenance script meant for a staging replica ran against the production "
        "primary and removed the data directory. The newest usable backup was 6 hours old, "
        "because the nightly backup job had been failing silently for two weeks.",
        "impact": "Orders placed in a **6-hour window** were lost from the primary database and had to be "
        "reconstructed from payment-provider records and e-mails. The shop was read-only for "
        "4 hours 20 minutes.",
        "narrative": "Replication lag had been growing all evening. The engineer on call was following the "
        "runbook step to re-seed a replica, in a terminal with sessions open to both "
        "hosts. Host names differ by one character (`db1` and `db2`) and the prompts look "
        "the same. Backups existed on paper: the job's failure e-mails went to a list that "
        "had been archived.",
        "timeline": [
            (0, "alert", "Replication lag alert on `db2` (low urgency)."),
            (40, "action", "Runbook step 4: stop replica, clear data directory, re-seed."),
            (42, "detection", 'Application errors: `relation "orders" does not exist`.'),
            (44, "escalation", "Incident declared; database team paged."),
            (50, "decision", "Put the shop into read-only mode to stop further writes."),
            (55, "status_update", "Status page: *Major outage — orders unavailable*."),
            (
                70,
                "action",
                "Newest backup found is 6 hours old; nightly job failing since the 14th.",
            ),
            (
                95,
                "decision",
                "Restore the 6-hour-old backup, then replay from WAL archive where possible.",
            ),
            (180, "status_update", "Status page: restore in progress, shop read-only."),
            (260, "mitigation", "Restore complete; shop back to read-write."),
            (300, "communication", "Support and finance start reconstructing lost orders."),
            (1440, "resolution", "All affected orders reconstructed and customers contacted."),
        ],
        "factors": [
            (
                "tooling",
                "Terminal sessions to production and replicas look identical; nothing marks "
                "the production primary.",
                [1, 2],
            ),
            (
                "documentation",
                "The runbook's destructive step did not ask to confirm the host's role.",
                [1],
            ),
            (
                "monitoring",
                "Backup job failures were reported by e-mail to an archived list; no alert "
                "on backup age.",
                [6],
            ),
            (
                "workload",
                "The re-seed happened late in a long on-call shift with two earlier pages.",
                [0],
            ),
        ],
        "actions": [
            ("Alert when the newest verified backup is older than 26 hours", "detect", "high"),
            ("Run a monthly restore drill with a timed, verified restore", "prevent", "high"),
            (
                "Colour production prompts and require a role check before destructive steps",
                "prevent",
                "medium",
            ),
            (
                "Rewrite the replica re-seed runbook as a script with a host-role guard",
                "prevent",
                "high",
            ),
            ("Write up the backup gap as a lesson for all teams", "learn", "low"),
        ],
        "went_well": "The decision to go read-only early limited the loss. Payment records made "
        "reconstruction possible.",
        "lucky": "The WAL archive had survived on separate storage.",
        "lessons": "A backup is only real once a restore from it has been tested.",
    },
    {
        "titles": [
            "Customers e-mailed twice after a retry storm",
            "Duplicate order confirmations sent",
            "Non-idempotent retry sends duplicate e-mails",
        ],
        "severity": "SEV3",
        "services": ["notifications", "orders-api"],
        "teams": ["growth"],
        "tags": ["retries", "idempotency", "email"],
        "summary": "A timeout between the order service and the mail provider made the queue worker "
        "retry sends that had in fact succeeded. Some 18,000 customers got the same "
        "confirmation e-mail two to five times.",
        "impact": "About 18,000 customers received duplicate e-mails over 2 hours; support handled "
        "140 tickets. No money was charged twice.",
        "narrative": "The worker treated any timeout as a failure and retried. The provider accepted "
        "the message before the timeout, so each retry was a new e-mail. The send call "
        "carried no idempotency key.",
        "timeline": [
            (0, "action", "Mail provider latency rises to 8 s (their incident)."),
            (12, "detection", "Support notices customers reporting duplicate confirmations."),
            (20, "escalation", "Growth on-call engineer joins the support thread."),
            (28, "decision", "Pause the notification queue."),
            (31, "mitigation", "Queue paused; duplicates stop."),
            (45, "status_update", "Internal update: cause understood, fix in review."),
            (90, "action", "Deploy: idempotency key on sends, retries only on connection errors."),
            (120, "resolution", "Queue resumed and drained without duplicates."),
        ],
        "factors": [
            (
                "design",
                "Sends were not idempotent, so a retry after an ambiguous timeout duplicates "
                "the e-mail.",
                [0, 6],
            ),
            ("monitoring", "No metric on messages per order; support detected it first.", [1]),
            ("dependency", "The provider's latency incident was not visible to us.", [0]),
        ],
        "actions": [
            ("Send an idempotency key with every outbound e-mail", "prevent", "high"),
            ("Alert when e-mails per order exceed 1.2 over 10 minutes", "detect", "medium"),
            ("Subscribe the on-call channel to the provider's status feed", "detect", "low"),
        ],
        "went_well": "Pausing the queue was one command and stopped the harm immediately.",
        "lucky": "The duplicated e-mail was a confirmation, not a charge.",
        "lessons": "A timeout is an unknown outcome, not a failure.",
    },
    {
        "titles": [
            "Low-urgency disk alerts missed for days",
            "Search cluster ran out of disk",
            "Search degraded after weeks of disk warnings",
        ],
        "severity": "SEV2",
        "services": ["search"],
        "teams": ["data"],
        "tags": ["alerting", "disk", "alert-fatigue"],
        "summary": "Disk usage on the search cluster climbed for nine days, with a low-urgency alert "
        "firing each day into a channel with hundreds of other warnings. When the disks "
        "filled, indexing stopped and search results went stale.",
        "impact": "Search results were up to 11 hours stale for all customers; new products did not "
        "appear in search for most of a working day.",
        "narrative": "The channel received about 300 low-urgency alerts a week. People had learned that "
        "nearly all of them resolved themselves. The disk alert looked like the others.",
        "timeline": [
            (0, "alert", "Low-urgency: `search-3` disk 80%."),
            (11520, "alert", "Low-urgency: `search-3` disk 95%."),
            (12960, "detection", "Merchants report new products missing from search."),
            (12975, "escalation", "Data team on-call paged by support."),
            (13000, "action", "Indexing found stopped: `flood stage disk watermark exceeded`."),
            (13020, "mitigation", "Old indices deleted; disk at 70%; indexing resumes."),
            (13100, "status_update", "Status: search catching up, results may be stale."),
            (13620, "resolution", "Reindex complete; search fresh."),
        ],
        "factors": [
            (
                "monitoring",
                "The disk alert had no trend or time-to-full, and shared a channel with "
                "hundreds of noisy warnings.",
                [0, 1],
            ),
            ("workload", "Alert fatigue: the team had no time budgeted for tuning alerts.", [1]),
            ("capacity", "Index retention was never configured after the cluster was built.", [4]),
        ],
        "actions": [
            ("Page on predicted disk-full within 48 hours", "detect", "high"),
            ("Review and delete or fix the 20 noisiest low-urgency alerts", "process", "medium"),
            ("Configure index lifecycle retention", "prevent", "medium"),
        ],
        "went_well": "Merchants' reports reached the right team within 15 minutes.",
        "lucky": "The cluster filled on a Tuesday, not during the sale weekend.",
        "lessons": "An alert that nobody acts on is worse than no alert: it hides the one that matters.",
    },
    {
        "titles": [
            "Expired TLS certificate on the public API",
            "API outage from an expired certificate",
            "Mobile apps failing after certificate expiry",
        ],
        "severity": "SEV1",
        "services": ["public-api", "mobile-backend"],
        "teams": ["identity", "platform"],
        "tags": ["certificates", "tls"],
        "summary": "The certificate for the public API expired at midnight UTC. Automatic renewal had "
        "stopped months earlier when the DNS provider's API token was rotated.",
        "impact": "All API clients and both mobile apps failed for 1 hour 35 minutes.",
        "narrative": "Renewal ran as a cron job on a host that was later rebuilt. The rebuild used a new "
        "token, which the renewal job did not have. The job's failures went to a log "
        "nobody read.",
        "timeline": [
            (0, "detection", "Synthetic check: TLS handshake failure on `api.example.com`."),
            (4, "escalation", "Identity on-call paged."),
            (15, "status_update", "Status page: *API unavailable*."),
            (22, "action", "Certificate found expired at 00:00 UTC."),
            (40, "decision", "Issue a certificate manually rather than debug the renewal job."),
            (80, "mitigation", "New certificate deployed to the load balancers."),
            (95, "resolution", "Error rates normal on API and mobile."),
        ],
        "factors": [
            (
                "tooling",
                "Renewal depended on a credential that was rotated without updating the job.",
                [3],
            ),
            ("monitoring", "No alert on certificate expiry within 21 days.", [0]),
            ("documentation", "The manual issuance steps were not written down.", [4]),
        ],
        "actions": [
            ("Alert on any certificate expiring within 21 days", "detect", "high"),
            ("Move renewal to the managed certificate service", "prevent", "high"),
            ("Document manual certificate issuance in the runbook", "mitigate", "medium"),
        ],
        "went_well": "Synthetic monitoring caught it within a minute.",
        "lucky": "Only one certificate was affected.",
        "lessons": "Automation that fails quietly is a timer nobody can see.",
    },
    {
        "titles": [
            "Capacity cliff during the spring sale",
            "Connection pool exhaustion under load",
            "Slow pages at peak traffic",
        ],
        "severity": "SEV2",
        "services": ["catalog", "checkout"],
        "teams": ["platform", "payments"],
        "tags": ["capacity", "load"],
        "summary": "At 3.1× normal traffic the database connection pool hit its limit; latency rose "
        "from 200 ms to 9 s and the autoscaler added app servers, each opening more "
        "connections and making it worse.",
        "impact": "Catalog and checkout pages were slow or failing for 38 minutes at the start of the "
        "sale; conversion dropped by about 40% in that window.",
        "narrative": "Load tests had covered 2× traffic. Adding app servers looked like the obvious "
        "lever and the autoscaler did it automatically; nobody knew each one added "
        "50 connections.",
        "timeline": [
            (0, "alert", "p95 latency above 2 s on catalog."),
            (3, "detection", "On-call sees connection pool saturation on the primary."),
            (8, "action", "Autoscaler adds 6 app servers."),
            (12, "decision", "Cap app servers and lower per-process pool size."),
            (20, "status_update", "Status page: *Degraded performance*."),
            (30, "mitigation", "Connection pooler placed in front of the database."),
            (38, "resolution", "Latency back under 300 ms."),
        ],
        "factors": [
            (
                "capacity",
                "Connections scale with app servers; the database limit was a hidden cliff.",
                [1, 2],
            ),
            ("testing", "Load tests stopped at 2× traffic.", [0]),
            ("design", "The autoscaler's action amplified the bottleneck.", [2]),
        ],
        "actions": [
            ("Run a connection pooler in front of every primary", "prevent", "high"),
            ("Load test to 4× expected peak before each sale", "prevent", "medium"),
            ("Alert on pool saturation above 80%", "detect", "medium"),
        ],
        "went_well": "The pooler had been trialled in staging and went in quickly.",
        "lucky": "The sale e-mail went out in batches, so the peak built slowly.",
        "lessons": "Scaling out is not free for the shared thing behind it.",
    },
    {
        "titles": [
            "Feature flag enabled for all users by mistake",
            "Unfinished feature exposed by a flag change",
        ],
        "severity": "SEV3",
        "services": ["web-app"],
        "teams": ["growth"],
        "tags": ["feature-flags"],
        "summary": "A flag meant for internal users was enabled for everyone because the targeting "
        'form\'s default is "all users". A half-built page was visible for 25 minutes.',
        "impact": "About 9,000 visitors saw an unfinished pricing page; 12 support tickets.",
        "narrative": "The flag tool's form pre-selects the widest audience. The change had no review "
        "step because flag changes are considered low risk.",
        "timeline": [
            (0, "action", "Flag `new-pricing` targeting changed."),
            (10, "detection", "Customer tweets a screenshot of the unfinished page."),
            (15, "mitigation", "Flag turned off."),
            (25, "resolution", "CDN cache purged; old page everywhere."),
            (40, "communication", "Support macro sent to ticket authors."),
        ],
        "factors": [
            ("tooling", "The flag form defaults to all users.", [0]),
            ("process", "Flag changes skip review even for customer-facing pages.", [0]),
        ],
        "actions": [
            ("Default new flag targeting to internal users only", "prevent", "medium"),
            ("Require a second approver for flags that target everyone", "process", "low"),
        ],
        "went_well": "The flag could be turned off in seconds.",
        "lucky": "The page had placeholder prices, not wrong real ones.",
        "lessons": "Defaults are decisions; make the safe one the default.",
    },
    {
        "titles": [
            "DNS change broke internal service discovery",
            "Internal services unreachable after DNS migration",
        ],
        "severity": "SEV2",
        "services": ["service-mesh", "orders-api"],
        "teams": ["platform"],
        "tags": ["dns", "migration"],
        "summary": "Moving internal zones to a new DNS provider dropped a wildcard record. Services "
        "resolving old names failed once their caches expired over the next hour.",
        "impact": "Order processing was delayed up to 70 minutes; no orders were lost.",
        "narrative": "The migration was planned over several weeks and checked record by record, but "
        "the comparison script skipped wildcard records.",
        "timeline": [
            (0, "action", "DNS zone cut-over to the new provider."),
            (35, "alert", "Error rate rising on `orders-worker`."),
            (42, "detection", "Logs show `NXDOMAIN` for `*.svc.internal` names."),
            (50, "decision", "Restore the wildcard record rather than roll back the migration."),
            (55, "mitigation", "Wildcard record restored."),
            (70, "resolution", "Backlog processed; all workers healthy."),
        ],
        "factors": [
            ("change", "The migration comparison skipped wildcard records.", [0, 2]),
            ("testing", "No synthetic lookups of internal names after the cut-over.", [1]),
        ],
        "actions": [
            ("Include wildcard records in the DNS diff tool", "prevent", "high"),
            ("Add synthetic DNS checks for internal names", "detect", "medium"),
        ],
        "went_well": "The team had a rollback plan and chose a smaller fix.",
        "lucky": "TTLs were long enough to spread the failures out.",
        "lessons": "Caches hide a change's effect until long after the change.",
    },
    {
        "titles": [
            "Login failures after identity provider update",
            "SSO outage for enterprise customers",
        ],
        "severity": "SEV2",
        "services": ["auth", "web-app"],
        "teams": ["identity"],
        "tags": ["sso", "auth"],
        "summary": "An update to the identity library changed how clock skew is handled; tokens from "
        "one enterprise identity provider were rejected as not yet valid.",
        "impact": "Enterprise SSO logins failed for 2 hours for about 60 customer organisations.",
        "narrative": "The library changelog mentioned the change in a minor release note. Our tests "
        "used a fixed clock, so skew never appeared.",
        "timeline": [
            (0, "action", "Deploy with identity library upgrade."),
            (20, "detection", "Enterprise support reports SSO failures."),
            (30, "escalation", "Identity on-call paged."),
            (55, "action", "Token validation errors: `iat in the future`."),
            (70, "mitigation", "Allowed clock skew set to 120 s via config."),
            (120, "resolution", "All affected organisations confirmed working."),
            (125, "status_update", "Status page: *Resolved*."),
        ],
        "factors": [
            ("dependency", "A minor library release changed validation behaviour.", [0]),
            ("testing", "Tests used a frozen clock, so skew was never exercised.", [3]),
            ("monitoring", "No alert on SSO failure rate per provider.", [1]),
        ],
        "actions": [
            ("Add SSO failure-rate alerts per identity provider", "detect", "high"),
            ("Test token validation with skewed clocks", "prevent", "medium"),
        ],
        "went_well": "Enterprise support escalated within minutes.",
        "lucky": "Password logins kept working for most users.",
        "lessons": "Time is an input; test it like one.",
    },
    {
        "titles": ["Stale cache served wrong prices", "Price cache not invalidated after import"],
        "severity": "SEV3",
        "services": ["catalog", "pricing"],
        "teams": ["data"],
        "tags": ["cache"],
        "summary": "A bulk price import bypassed the event that invalidates the price cache. Old "
        "prices were shown for 3 hours; checkout charged the correct new prices.",
        "impact": "Customers saw prices that differed from the charged amount; 210 refunds were issued.",
        "narrative": "The import tool wrote straight to the database for speed, skipping the service "
        "layer that emits invalidation events.",
        "timeline": [
            (0, "action", "Bulk price import run."),
            (95, "detection", "Customer complaint: checkout price higher than listed."),
            (110, "action", "Cache found holding pre-import prices."),
            (120, "mitigation", "Price cache flushed."),
            (180, "resolution", "Refund list prepared and approved."),
        ],
        "factors": [
            (
                "design",
                "Cache invalidation depends on every writer remembering to emit an event.",
                [0, 2],
            ),
            ("monitoring", "No check comparing listed and charged prices.", [1]),
        ],
        "actions": [
            ("Invalidate the price cache from database change events", "prevent", "high"),
            ("Alert when listed and charged prices differ", "detect", "medium"),
        ],
        "went_well": "Checkout used the authoritative price, so nobody was overcharged silently.",
        "lucky": "The import raised prices by small amounts only.",
        "lessons": "Every shortcut around the service layer skips its guarantees too.",
    },
    {
        "titles": [
            "Near miss: migration locked the orders table",
            "Schema migration blocked writes for 4 minutes",
        ],
        "severity": "SEV4",
        "services": ["orders-db"],
        "teams": ["platform"],
        "tags": ["migrations", "near-miss"],
        "summary": "A migration that added a column with a default took a lock on the orders table. "
        "It was cancelled after 4 minutes, before customers noticed.",
        "impact": "Order writes queued for 4 minutes; none failed.",
        "narrative": "On the database version we run, this kind of change rewrites the table. The "
        "migration review checklist did not mention it.",
        "timeline": [
            (0, "action", "Migration `0142_add_gift_flag` starts."),
            (2, "alert", "Lock wait alert on `orders`."),
            (3, "detection", "On-call sees the migration holding an exclusive lock."),
            (4, "mitigation", "Migration cancelled."),
            (10, "resolution", "Queue drained."),
        ],
        "factors": [
            ("documentation", "The migration checklist did not list lock-taking operations.", [0]),
            ("tooling", "No lock timeout is set for migrations.", [1, 2]),
        ],
        "actions": [
            ("Set lock_timeout for all migrations", "prevent", "high"),
            ("Add lock-taking operations to the migration checklist", "learn", "low"),
        ],
        "went_well": "The lock alert fired in two minutes.",
        "lucky": "It ran at the quietest hour of the week.",
        "lessons": "Near misses are free lessons.",
    },
    {
        "titles": ["Mobile push notifications delayed", "Push backlog after certificate rotation"],
        "severity": "SEV4",
        "services": ["mobile-backend", "notifications"],
        "teams": ["mobile"],
        "tags": ["push", "certificates"],
        "summary": "Push notifications to one platform were delayed up to 5 hours after a signing key "
        "rotation left one worker pool with the old key.",
        "impact": "Delivery updates arrived late for about 30% of iOS users.",
        "narrative": "Keys are distributed per pool; one pool was added after the rotation script "
        "was written.",
        "timeline": [
            (0, "action", "Signing key rotated."),
            (120, "detection", "Mobile team notices queue depth growing."),
            (150, "action", "Pool `push-ios-b` found using the old key."),
            (170, "mitigation", "Key deployed to the pool."),
            (300, "resolution", "Backlog delivered."),
        ],
        "factors": [
            ("configuration", "The rotation script had a hard-coded list of pools.", [0, 2]),
            ("monitoring", "No alert on push queue age.", [1]),
        ],
        "actions": [
            ("Discover worker pools dynamically in the rotation script", "prevent", "medium"),
            ("Alert on push queue age above 10 minutes", "detect", "medium"),
        ],
        "went_well": "Messages were queued, not dropped.",
        "lucky": "Only one of three pools was affected.",
        "lessons": "Lists in scripts go stale quietly.",
    },
]

FILLER_UPDATES = [
    ("status_update", "Update posted in `#incident`: still investigating, next update in 30 min."),
    ("communication", "Customer support briefed with a holding statement."),
    ("action", "Dashboards for the affected service shared in the incident channel."),
    ("decision", "Incident commander assigns a scribe and a communications lead."),
    ("status_update", "Status page updated: *Monitoring a fix*."),
    ("communication", "Account managers of the largest customers informed."),
    ("action", "Recent changes to the service listed and reviewed."),
    ("other", "Hand-over to the next on-call engineer with notes."),
]

TEAMS = [
    ("Payments", "payments", "Checkout, payment providers and refunds."),
    ("Platform", "platform", "Databases, networking, deploys and the service mesh."),
    ("Data", "data", "Search, pricing, the catalog pipeline."),
    ("Identity", "identity", "Login, SSO and the public API's edge."),
    ("Growth", "growth", "Web app, notifications, experiments."),
    ("Mobile", "mobile", "The iOS and Android apps and their backend."),
]

SERVICES = {
    "checkout": "payments", "payments-api": "payments", "orders-db": "platform",
    "orders-api": "platform", "notifications": "growth", "search": "data",
    "public-api": "identity", "mobile-backend": "mobile", "catalog": "data", "pricing": "data",
    "web-app": "growth", "service-mesh": "platform", "auth": "identity",
}  # fmt: skip

PEOPLE = [
    ("amara", "Amara", "Okafor"), ("ben", "Ben", "Larsen"), ("chen", "Chen", "Wei"),
    ("dana", "Dana", "Kowalski"), ("eli", "Eli", "Haddad"), ("fatima", "Fatima", "Zahra"),
    ("gabe", "Gabe", "Moreno"), ("hana", "Hana", "Sato"), ("ivan", "Ivan", "Petrov"),
    ("jo", "Jo", "Mensah"), ("kai", "Kai", "Nakamura"), ("lena", "Lena", "Fischer"),
    ("mateo", "Mateo", "Silva"), ("nia", "Nia", "Roberts"), ("omar", "Omar", "Farouk"),
    ("priya", "Priya", "Raman"), ("quinn", "Quinn", "Murphy"), ("rosa", "Rosa", "Vega"),
    ("sam", "Sam", "Taylor"), ("tomas", "Tomas", "Novak"), ("uma", "Uma", "Iyer"),
    ("viktor", "Viktor", "Berg"), ("wen", "Wen", "Liu"), ("yara", "Yara", "Haddad"),
]  # fmt: skip

LESSONS = [
    (
        "The backup that wasn't",
        "story",
        "We had backups for years. When we needed one, the newest had been failing quietly for two "
        "weeks. The job's alerts went to a list nobody read anymore.",
        "Test a restore every month, time it, and alert on backup age — not on job failure.",
        ["monitoring", "tooling"],
    ),
    (
        "I ran the cleanup against production",
        "story",
        "Two terminals, two hosts one letter apart, the same prompt. The command did exactly what I "
        "asked, on the wrong machine. Nothing in the environment told me which one I was on.",
        "Colour production prompts red and make destructive scripts ask for the host's role.",
        ["tooling", "workload"],
    ),
    (
        "A timeout is not a failure",
        "from_incident",
        "When a call times out, it may have succeeded. Retrying a non-idempotent call turns a "
        "slow provider into duplicate e-mails.",
        "Give every side-effecting call an idempotency key before adding retries.",
        ["design"],
    ),
    (
        "Near miss: the migration that locked orders",
        "near_miss",
        "Adding a column with a default rewrote a large table. We cancelled it in four minutes.",
        "Set lock_timeout on every migration.",
        ["tooling", "documentation"],
    ),
    (
        "Alert fatigue hides the alert that matters",
        "from_incident",
        "Three hundred low-urgency alerts a week taught us to ignore the channel.",
        "Delete or fix alerts nobody acts on; page only on what needs a human now.",
        ["monitoring"],
    ),
]
