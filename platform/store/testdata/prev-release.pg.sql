--
-- PostgreSQL database dump
--

\restrict gkh8kBHsHEv2YtGZQynxAtGhJh5MwMmgzLozL2GQg6Dm2BrG7qsejEKiXtqm85L

-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: glmkit_prev_release; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA glmkit_prev_release;


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: accounts; Type: TABLE; Schema: glmkit_prev_release; Owner: -
--

CREATE TABLE glmkit_prev_release.accounts (
    id text NOT NULL,
    name text NOT NULL,
    created_at bigint NOT NULL
);


--
-- Name: api_keys; Type: TABLE; Schema: glmkit_prev_release; Owner: -
--

CREATE TABLE glmkit_prev_release.api_keys (
    id text NOT NULL,
    account_id text NOT NULL,
    name text DEFAULT ''::text NOT NULL,
    secret_sealed text NOT NULL,
    created_at bigint NOT NULL,
    last_used_at bigint DEFAULT 0 NOT NULL,
    revoked_at bigint DEFAULT 0 NOT NULL
);


--
-- Name: billing_credits; Type: TABLE; Schema: glmkit_prev_release; Owner: -
--

CREATE TABLE glmkit_prev_release.billing_credits (
    id text NOT NULL,
    account_id text NOT NULL,
    kind text NOT NULL,
    micros bigint NOT NULL,
    tokens bigint NOT NULL,
    ref text NOT NULL,
    note text NOT NULL,
    created_at bigint NOT NULL
);


--
-- Name: billing_leases; Type: TABLE; Schema: glmkit_prev_release; Owner: -
--

CREATE TABLE glmkit_prev_release.billing_leases (
    id text NOT NULL,
    holder text NOT NULL,
    account_id text NOT NULL,
    source text NOT NULL,
    granted bigint NOT NULL,
    spent bigint NOT NULL,
    uncollected bigint NOT NULL,
    state text NOT NULL,
    created_at bigint NOT NULL,
    expires_at bigint NOT NULL,
    closed_at bigint NOT NULL,
    returned bigint NOT NULL,
    close_note text NOT NULL
);


--
-- Name: billing_limit_rules; Type: TABLE; Schema: glmkit_prev_release; Owner: -
--

CREATE TABLE glmkit_prev_release.billing_limit_rules (
    subject text NOT NULL,
    id text NOT NULL,
    max_concurrent bigint NOT NULL,
    rpm bigint NOT NULL,
    daily_tokens bigint NOT NULL,
    updated_at bigint NOT NULL,
    CONSTRAINT billing_limit_rules_daily_tokens_check CHECK ((daily_tokens >= 0)),
    CONSTRAINT billing_limit_rules_max_concurrent_check CHECK ((max_concurrent >= 0)),
    CONSTRAINT billing_limit_rules_rpm_check CHECK ((rpm >= 0))
);


--
-- Name: billing_migrations; Type: TABLE; Schema: glmkit_prev_release; Owner: -
--

CREATE TABLE glmkit_prev_release.billing_migrations (
    version bigint NOT NULL,
    applied_at bigint NOT NULL
);


--
-- Name: billing_packages; Type: TABLE; Schema: glmkit_prev_release; Owner: -
--

CREATE TABLE glmkit_prev_release.billing_packages (
    id text NOT NULL,
    account_id text NOT NULL,
    name text NOT NULL,
    kind text NOT NULL,
    models text NOT NULL,
    tokens_granted bigint NOT NULL,
    tokens_remaining bigint NOT NULL,
    purchased_at bigint NOT NULL,
    effective_at bigint NOT NULL,
    expires_at bigint NOT NULL,
    created_at bigint NOT NULL,
    CONSTRAINT billing_packages_tokens_remaining_check CHECK ((tokens_remaining >= 0))
);


--
-- Name: billing_prices; Type: TABLE; Schema: glmkit_prev_release; Owner: -
--

CREATE TABLE glmkit_prev_release.billing_prices (
    model text NOT NULL,
    input_micros bigint NOT NULL,
    output_micros bigint NOT NULL,
    image_micros bigint NOT NULL,
    updated_at bigint NOT NULL,
    CONSTRAINT billing_prices_image_micros_check CHECK ((image_micros >= 0)),
    CONSTRAINT billing_prices_input_micros_check CHECK ((input_micros >= 0)),
    CONSTRAINT billing_prices_output_micros_check CHECK ((output_micros >= 0))
);


--
-- Name: billing_usage; Type: TABLE; Schema: glmkit_prev_release; Owner: -
--

CREATE TABLE glmkit_prev_release.billing_usage (
    request_id text NOT NULL,
    account_id text NOT NULL,
    key_id text NOT NULL,
    model text NOT NULL,
    prompt_tokens bigint NOT NULL,
    completion_tokens bigint NOT NULL,
    images bigint NOT NULL,
    package_tokens bigint NOT NULL,
    amount_micros bigint NOT NULL,
    discount_micros bigint NOT NULL,
    cash_micros bigint NOT NULL,
    shortfall_micros bigint NOT NULL,
    outcome text NOT NULL,
    estimated integer NOT NULL,
    reserved_at bigint NOT NULL,
    created_at bigint NOT NULL
);


--
-- Name: billing_usage_parts; Type: TABLE; Schema: glmkit_prev_release; Owner: -
--

CREATE TABLE glmkit_prev_release.billing_usage_parts (
    request_id text NOT NULL,
    seq integer NOT NULL,
    source text NOT NULL,
    lease_id text NOT NULL,
    tokens bigint NOT NULL,
    micros bigint NOT NULL
);


--
-- Name: billing_wallets; Type: TABLE; Schema: glmkit_prev_release; Owner: -
--

CREATE TABLE glmkit_prev_release.billing_wallets (
    account_id text NOT NULL,
    cash_micros bigint NOT NULL,
    updated_at bigint NOT NULL,
    CONSTRAINT billing_wallets_cash_micros_check CHECK ((cash_micros >= 0))
);


--
-- Name: request_log; Type: TABLE; Schema: glmkit_prev_release; Owner: -
--

CREATE TABLE glmkit_prev_release.request_log (
    id text NOT NULL,
    request_id text DEFAULT ''::text NOT NULL,
    created_at bigint NOT NULL,
    account_id text DEFAULT ''::text NOT NULL,
    key_id text DEFAULT ''::text NOT NULL,
    model text DEFAULT ''::text NOT NULL,
    endpoint text NOT NULL,
    stream integer DEFAULT 0 NOT NULL,
    prompt_tokens bigint DEFAULT 0 NOT NULL,
    completion_tokens bigint DEFAULT 0 NOT NULL,
    total_tokens bigint DEFAULT 0 NOT NULL,
    images integer DEFAULT 0 NOT NULL,
    estimated integer DEFAULT 0 NOT NULL,
    latency_ms bigint DEFAULT 0 NOT NULL,
    http_status integer DEFAULT 0 NOT NULL,
    error_code text DEFAULT ''::text NOT NULL,
    backend text DEFAULT ''::text NOT NULL,
    charge_amount bigint DEFAULT 0 NOT NULL,
    charge_paid_by text DEFAULT ''::text NOT NULL
);


--
-- Name: schema_migrations; Type: TABLE; Schema: glmkit_prev_release; Owner: -
--

CREATE TABLE glmkit_prev_release.schema_migrations (
    version text NOT NULL,
    applied_at bigint NOT NULL
);


--
-- Name: tasks; Type: TABLE; Schema: glmkit_prev_release; Owner: -
--

CREATE TABLE glmkit_prev_release.tasks (
    id text NOT NULL,
    account_id text NOT NULL,
    key_id text NOT NULL,
    request_id text NOT NULL,
    model text NOT NULL,
    state text NOT NULL,
    request text NOT NULL,
    result text DEFAULT ''::text NOT NULL,
    error_code text DEFAULT ''::text NOT NULL,
    error_message text DEFAULT ''::text NOT NULL,
    worker text DEFAULT ''::text NOT NULL,
    lease_until bigint DEFAULT 0 NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    finished_at bigint DEFAULT 0 NOT NULL
);


--
-- Data for Name: accounts; Type: TABLE DATA; Schema: glmkit_prev_release; Owner: -
--

INSERT INTO glmkit_prev_release.accounts VALUES ('default', 'default', 1796409834357);
INSERT INTO glmkit_prev_release.accounts VALUES ('acme', 'acme', 1796409838305);
INSERT INTO glmkit_prev_release.accounts VALUES ('broke', 'broke', 1796409839049);


--
-- Data for Name: api_keys; Type: TABLE DATA; Schema: glmkit_prev_release; Owner: -
--

INSERT INTO glmkit_prev_release.api_keys VALUES ('a190f2c7d219a45eae1d3c9b33459c5b', 'acme', 'ci', 'cJbR57zvlnHgZ+bmCPAR49QTMNoQeZOyCV5R2cp4ir2eqwFLpwBGabMyAZI=', 1796409838386, 1796409840658, 0);
INSERT INTO glmkit_prev_release.api_keys VALUES ('e2e1f595062da81ae1d46ae9d41dc88c', 'default', 'first key', 'p7GepVyMV0PgFw1ePMDCoUBXY6YUkG07fbhPkw5lqmViyUDluXctbgjosDg=', 1796409834358, 1796409840751, 0);
INSERT INTO glmkit_prev_release.api_keys VALUES ('8c17effc7204a4007c7fa6fe8d819233', 'broke', '', 'sXoKq0VPBXs89EWWIHrFPYaNyVXgofz6+YzZkFBZENX2L3oc1VC/710wRgs=', 1796409839248, 1796409840773, 0);


--
-- Data for Name: billing_credits; Type: TABLE DATA; Schema: glmkit_prev_release; Owner: -
--

INSERT INTO glmkit_prev_release.billing_credits VALUES ('cr_7df825b2527de1be86c2', 'default', 'package', 0, 100000000, 'pkg_welcome_default', '1亿tokens资源包（三个月总额）', 1796409834416);
INSERT INTO glmkit_prev_release.billing_credits VALUES ('cr_0567219d9b89364e2b1f', 'acme', 'package', 0, 300, 'pkg_0fd730caf3b0c1ff37d2', 'embed 300', 1796409838534);
INSERT INTO glmkit_prev_release.billing_credits VALUES ('cr_3c02a70c0a90f5a91f7e', 'acme', 'topup', 1000000, 0, '', 'first top-up', 1796409838652);
INSERT INTO glmkit_prev_release.billing_credits VALUES ('cr_3dc4a8c726e1e179e628', 'default', 'topup', 2500000, 0, '', '', 1796409838763);


--
-- Data for Name: billing_leases; Type: TABLE DATA; Schema: glmkit_prev_release; Owner: -
--

INSERT INTO glmkit_prev_release.billing_leases VALUES ('ls_27c0e555cce36c4a8f53', 'h_83298c66f54faeb7d82a', 'acme', 'pkg_0fd730caf3b0c1ff37d2', 152, 152, 0, 'closed', 1796409840472, 1796409960472, 1796409841794, 0, 'returned by holder');
INSERT INTO glmkit_prev_release.billing_leases VALUES ('ls_29023c26ba60b40b63ab', 'h_83298c66f54faeb7d82a', 'acme', 'pkg_0fd730caf3b0c1ff37d2', 71, 71, 0, 'closed', 1796409840522, 1796409960522, 1796409841794, 0, 'returned by holder');
INSERT INTO glmkit_prev_release.billing_leases VALUES ('ls_583f3ae391ef5b6885a3', 'h_83298c66f54faeb7d82a', 'acme', 'cash:acme', 250003, 265, 0, 'closed', 1796409840522, 1796409960522, 1796409841794, 249738, 'returned by holder');
INSERT INTO glmkit_prev_release.billing_leases VALUES ('ls_87dd0d53ad3a220fa96d', 'h_83298c66f54faeb7d82a', 'acme', 'pkg_0fd730caf3b0c1ff37d2', 77, 77, 0, 'closed', 1796409840498, 1796409960498, 1796409841794, 0, 'returned by holder');
INSERT INTO glmkit_prev_release.billing_leases VALUES ('ls_6b688f5e751d632e4a37', 'h_83298c66f54faeb7d82a', 'default', 'pkg_welcome_default', 1000004, 12, 0, 'closed', 1796409840681, 1796409960681, 1796409841794, 999992, 'returned by holder');


--
-- Data for Name: billing_limit_rules; Type: TABLE DATA; Schema: glmkit_prev_release; Owner: -
--

INSERT INTO glmkit_prev_release.billing_limit_rules VALUES ('account', 'acme', 0, 600, 0, 1796409838877);


--
-- Data for Name: billing_migrations; Type: TABLE DATA; Schema: glmkit_prev_release; Owner: -
--

INSERT INTO glmkit_prev_release.billing_migrations VALUES (1, 1796409834389);
INSERT INTO glmkit_prev_release.billing_migrations VALUES (2, 1796409834389);


--
-- Data for Name: billing_packages; Type: TABLE DATA; Schema: glmkit_prev_release; Owner: -
--

INSERT INTO glmkit_prev_release.billing_packages VALUES ('pkg_0fd730caf3b0c1ff37d2', 'acme', 'embed 300', 'purchased', 'embedding-2', 300, 0, 1796409838453, 1796409838453, 1799001838453, 1796409838534);
INSERT INTO glmkit_prev_release.billing_packages VALUES ('pkg_welcome_default', 'default', '1亿tokens资源包（三个月总额）', 'gift', '', 100000000, 99999988, 1796409834416, 1796409834416, 1804185834416, 1796409834416);


--
-- Data for Name: billing_prices; Type: TABLE DATA; Schema: glmkit_prev_release; Owner: -
--

INSERT INTO glmkit_prev_release.billing_prices VALUES ('charglm-3', 15000, 15000, 0, 1796409834389);
INSERT INTO glmkit_prev_release.billing_prices VALUES ('cogview-3', 0, 0, 250000, 1796409834389);
INSERT INTO glmkit_prev_release.billing_prices VALUES ('cogview-3-flash', 0, 0, 0, 1796409834389);
INSERT INTO glmkit_prev_release.billing_prices VALUES ('embedding-2', 500, 0, 0, 1796409834389);
INSERT INTO glmkit_prev_release.billing_prices VALUES ('embedding-3', 500, 0, 0, 1796409834389);
INSERT INTO glmkit_prev_release.billing_prices VALUES ('glm-3-turbo', 5000, 5000, 0, 1796409834389);
INSERT INTO glmkit_prev_release.billing_prices VALUES ('glm-4-0520', 100000, 100000, 0, 1796409834389);
INSERT INTO glmkit_prev_release.billing_prices VALUES ('glm-4-air', 1000, 1000, 0, 1796409834389);
INSERT INTO glmkit_prev_release.billing_prices VALUES ('glm-4-airx', 10000, 10000, 0, 1796409834389);
INSERT INTO glmkit_prev_release.billing_prices VALUES ('glm-4-flash', 0, 0, 0, 1796409834389);
INSERT INTO glmkit_prev_release.billing_prices VALUES ('glm-4-plus', 5000, 5000, 0, 1796409834389);
INSERT INTO glmkit_prev_release.billing_prices VALUES ('glm-4v', 100000, 100000, 0, 1796409834389);
INSERT INTO glmkit_prev_release.billing_prices VALUES ('glm-4v-flash', 0, 0, 0, 1796409834389);
INSERT INTO glmkit_prev_release.billing_prices VALUES ('glmkit-embed-ngram', 0, 0, 0, 1796409834389);
INSERT INTO glmkit_prev_release.billing_prices VALUES ('glm-4', 200000, 200000, 0, 1796409838958);


--
-- Data for Name: billing_usage; Type: TABLE DATA; Schema: glmkit_prev_release; Owner: -
--

INSERT INTO glmkit_prev_release.billing_usage VALUES ('202612041844004bb97be10df6d171', 'acme', 'a190f2c7d219a45eae1d3c9b33459c5b', 'embedding-2', 103, 0, 0, 103, 52, 52, 0, 0, 'ok', 0, 1796409840472, 1796409840477);
INSERT INTO glmkit_prev_release.billing_usage VALUES ('2026120418440014c7a35689666a8d', 'acme', 'a190f2c7d219a45eae1d3c9b33459c5b', 'embedding-2', 103, 0, 0, 103, 52, 52, 0, 0, 'ok', 0, 1796409840498, 1796409840501);
INSERT INTO glmkit_prev_release.billing_usage VALUES ('20261204184400b3630d242db0fc67', 'acme', 'a190f2c7d219a45eae1d3c9b33459c5b', 'embedding-2', 103, 0, 0, 94, 52, 47, 5, 0, 'ok', 0, 1796409840522, 1796409840527);
INSERT INTO glmkit_prev_release.billing_usage VALUES ('20261204184400f5783a24ac5552e7', 'acme', 'a190f2c7d219a45eae1d3c9b33459c5b', 'embedding-2', 103, 0, 0, 0, 52, 0, 52, 0, 'ok', 0, 1796409840558, 1796409840558);
INSERT INTO glmkit_prev_release.billing_usage VALUES ('202612041844005f6fcbe284c9ba47', 'acme', 'a190f2c7d219a45eae1d3c9b33459c5b', 'embedding-2', 103, 0, 0, 0, 52, 0, 52, 0, 'ok', 0, 1796409840580, 1796409840581);
INSERT INTO glmkit_prev_release.billing_usage VALUES ('20261204184400ccb7a4086f570911', 'acme', 'a190f2c7d219a45eae1d3c9b33459c5b', 'embedding-2', 103, 0, 0, 0, 52, 0, 52, 0, 'ok', 0, 1796409840609, 1796409840610);
INSERT INTO glmkit_prev_release.billing_usage VALUES ('20261204184400f860deaef63a332c', 'acme', 'a190f2c7d219a45eae1d3c9b33459c5b', 'embedding-2', 103, 0, 0, 0, 52, 0, 52, 0, 'ok', 0, 1796409840636, 1796409840637);
INSERT INTO glmkit_prev_release.billing_usage VALUES ('202612041844006f71c3f7cc46a685', 'acme', 'a190f2c7d219a45eae1d3c9b33459c5b', 'embedding-2', 103, 0, 0, 0, 52, 0, 52, 0, 'ok', 0, 1796409840658, 1796409840659);
INSERT INTO glmkit_prev_release.billing_usage VALUES ('2026120418440014592d3a275b9e2a', 'default', 'e2e1f595062da81ae1d46ae9d41dc88c', 'embedding-2', 4, 0, 0, 4, 2, 2, 0, 0, 'ok', 0, 1796409840681, 1796409840687);
INSERT INTO glmkit_prev_release.billing_usage VALUES ('20261204184400c92b4c451936edd3', 'default', 'e2e1f595062da81ae1d46ae9d41dc88c', 'embedding-2', 4, 0, 0, 4, 2, 2, 0, 0, 'ok', 0, 1796409840709, 1796409840709);
INSERT INTO glmkit_prev_release.billing_usage VALUES ('202612041844008480a17219a5623a', 'default', 'e2e1f595062da81ae1d46ae9d41dc88c', 'embedding-2', 4, 0, 0, 4, 2, 2, 0, 0, 'ok', 0, 1796409840731, 1796409840731);
INSERT INTO glmkit_prev_release.billing_usage VALUES ('202612041844000624546fc07ea144', 'default', 'e2e1f595062da81ae1d46ae9d41dc88c', 'glmkit-embed-ngram', 1, 0, 0, 0, 0, 0, 0, 0, 'ok', 0, 1796409840751, 1796409840751);
INSERT INTO glmkit_prev_release.billing_usage VALUES ('20261204184400fc4099b1745a58ea', 'broke', '8c17effc7204a4007c7fa6fe8d819233', 'embedding-2', 0, 0, 0, 0, 0, 0, 0, 0, 'rejected_1113', 0, 1796409840773, 1796409840773);


--
-- Data for Name: billing_usage_parts; Type: TABLE DATA; Schema: glmkit_prev_release; Owner: -
--

INSERT INTO glmkit_prev_release.billing_usage_parts VALUES ('202612041844004bb97be10df6d171', 0, 'pkg_0fd730caf3b0c1ff37d2', 'ls_27c0e555cce36c4a8f53', 103, 52);
INSERT INTO glmkit_prev_release.billing_usage_parts VALUES ('2026120418440014c7a35689666a8d', 0, 'pkg_0fd730caf3b0c1ff37d2', 'ls_27c0e555cce36c4a8f53', 49, 25);
INSERT INTO glmkit_prev_release.billing_usage_parts VALUES ('2026120418440014c7a35689666a8d', 1, 'pkg_0fd730caf3b0c1ff37d2', 'ls_87dd0d53ad3a220fa96d', 54, 27);
INSERT INTO glmkit_prev_release.billing_usage_parts VALUES ('20261204184400b3630d242db0fc67', 0, 'pkg_0fd730caf3b0c1ff37d2', 'ls_87dd0d53ad3a220fa96d', 23, 12);
INSERT INTO glmkit_prev_release.billing_usage_parts VALUES ('20261204184400b3630d242db0fc67', 1, 'pkg_0fd730caf3b0c1ff37d2', 'ls_29023c26ba60b40b63ab', 71, 35);
INSERT INTO glmkit_prev_release.billing_usage_parts VALUES ('20261204184400b3630d242db0fc67', 2, 'cash', 'ls_583f3ae391ef5b6885a3', 9, 5);
INSERT INTO glmkit_prev_release.billing_usage_parts VALUES ('20261204184400f5783a24ac5552e7', 0, 'cash', 'ls_583f3ae391ef5b6885a3', 103, 52);
INSERT INTO glmkit_prev_release.billing_usage_parts VALUES ('202612041844005f6fcbe284c9ba47', 0, 'cash', 'ls_583f3ae391ef5b6885a3', 103, 52);
INSERT INTO glmkit_prev_release.billing_usage_parts VALUES ('20261204184400ccb7a4086f570911', 0, 'cash', 'ls_583f3ae391ef5b6885a3', 103, 52);
INSERT INTO glmkit_prev_release.billing_usage_parts VALUES ('20261204184400f860deaef63a332c', 0, 'cash', 'ls_583f3ae391ef5b6885a3', 103, 52);
INSERT INTO glmkit_prev_release.billing_usage_parts VALUES ('202612041844006f71c3f7cc46a685', 0, 'cash', 'ls_583f3ae391ef5b6885a3', 103, 52);
INSERT INTO glmkit_prev_release.billing_usage_parts VALUES ('2026120418440014592d3a275b9e2a', 0, 'pkg_welcome_default', 'ls_6b688f5e751d632e4a37', 4, 2);
INSERT INTO glmkit_prev_release.billing_usage_parts VALUES ('20261204184400c92b4c451936edd3', 0, 'pkg_welcome_default', 'ls_6b688f5e751d632e4a37', 4, 2);
INSERT INTO glmkit_prev_release.billing_usage_parts VALUES ('202612041844008480a17219a5623a', 0, 'pkg_welcome_default', 'ls_6b688f5e751d632e4a37', 4, 2);


--
-- Data for Name: billing_wallets; Type: TABLE DATA; Schema: glmkit_prev_release; Owner: -
--

INSERT INTO glmkit_prev_release.billing_wallets VALUES ('default', 2500000, 1796409838763);
INSERT INTO glmkit_prev_release.billing_wallets VALUES ('acme', 999735, 1796409840522);


--
-- Data for Name: request_log; Type: TABLE DATA; Schema: glmkit_prev_release; Owner: -
--

INSERT INTO glmkit_prev_release.request_log VALUES ('202612041844004bb97be10df6d171', '', 1796409840470, 'acme', 'a190f2c7d219a45eae1d3c9b33459c5b', 'embedding-2', 'embeddings', 0, 103, 0, 103, 0, 0, 7, 200, '', 'builtin', 52, '{"amount":52,"discount":52,"cash":0,"shortfall":0,"package_tokens":103,"parts":[{"source":"pkg_0fd730caf3b0c1ff37d2","lease":"ls_27c0e555cce36c4a8f53","tokens":103,"micros":52}]}');
INSERT INTO glmkit_prev_release.request_log VALUES ('2026120418440014c7a35689666a8d', '', 1796409840498, 'acme', 'a190f2c7d219a45eae1d3c9b33459c5b', 'embedding-2', 'embeddings', 0, 103, 0, 103, 0, 0, 2, 200, '', 'builtin', 52, '{"amount":52,"discount":52,"cash":0,"shortfall":0,"package_tokens":103,"parts":[{"source":"pkg_0fd730caf3b0c1ff37d2","lease":"ls_27c0e555cce36c4a8f53","tokens":49,"micros":25},{"source":"pkg_0fd730caf3b0c1ff37d2","lease":"ls_87dd0d53ad3a220fa96d","tokens":54,"micros":27}]}');
INSERT INTO glmkit_prev_release.request_log VALUES ('20261204184400b3630d242db0fc67', '', 1796409840522, 'acme', 'a190f2c7d219a45eae1d3c9b33459c5b', 'embedding-2', 'embeddings', 0, 103, 0, 103, 0, 0, 5, 200, '', 'builtin', 52, '{"amount":52,"discount":47,"cash":5,"shortfall":0,"package_tokens":94,"parts":[{"source":"pkg_0fd730caf3b0c1ff37d2","lease":"ls_87dd0d53ad3a220fa96d","tokens":23,"micros":12},{"source":"pkg_0fd730caf3b0c1ff37d2","lease":"ls_29023c26ba60b40b63ab","tokens":71,"micros":35},{"source":"cash","lease":"ls_583f3ae391ef5b6885a3","tokens":9,"micros":5}]}');
INSERT INTO glmkit_prev_release.request_log VALUES ('20261204184400f5783a24ac5552e7', '', 1796409840558, 'acme', 'a190f2c7d219a45eae1d3c9b33459c5b', 'embedding-2', 'embeddings', 0, 103, 0, 103, 0, 0, 0, 200, '', 'builtin', 52, '{"amount":52,"discount":0,"cash":52,"shortfall":0,"package_tokens":0,"parts":[{"source":"cash","lease":"ls_583f3ae391ef5b6885a3","tokens":103,"micros":52}]}');
INSERT INTO glmkit_prev_release.request_log VALUES ('202612041844005f6fcbe284c9ba47', '', 1796409840580, 'acme', 'a190f2c7d219a45eae1d3c9b33459c5b', 'embedding-2', 'embeddings', 0, 103, 0, 103, 0, 0, 0, 200, '', 'builtin', 52, '{"amount":52,"discount":0,"cash":52,"shortfall":0,"package_tokens":0,"parts":[{"source":"cash","lease":"ls_583f3ae391ef5b6885a3","tokens":103,"micros":52}]}');
INSERT INTO glmkit_prev_release.request_log VALUES ('20261204184400ccb7a4086f570911', '', 1796409840609, 'acme', 'a190f2c7d219a45eae1d3c9b33459c5b', 'embedding-2', 'embeddings', 0, 103, 0, 103, 0, 0, 1, 200, '', 'builtin', 52, '{"amount":52,"discount":0,"cash":52,"shortfall":0,"package_tokens":0,"parts":[{"source":"cash","lease":"ls_583f3ae391ef5b6885a3","tokens":103,"micros":52}]}');
INSERT INTO glmkit_prev_release.request_log VALUES ('20261204184400f860deaef63a332c', '', 1796409840636, 'acme', 'a190f2c7d219a45eae1d3c9b33459c5b', 'embedding-2', 'embeddings', 0, 103, 0, 103, 0, 0, 0, 200, '', 'builtin', 52, '{"amount":52,"discount":0,"cash":52,"shortfall":0,"package_tokens":0,"parts":[{"source":"cash","lease":"ls_583f3ae391ef5b6885a3","tokens":103,"micros":52}]}');
INSERT INTO glmkit_prev_release.request_log VALUES ('202612041844006f71c3f7cc46a685', '', 1796409840658, 'acme', 'a190f2c7d219a45eae1d3c9b33459c5b', 'embedding-2', 'embeddings', 0, 103, 0, 103, 0, 0, 0, 200, '', 'builtin', 52, '{"amount":52,"discount":0,"cash":52,"shortfall":0,"package_tokens":0,"parts":[{"source":"cash","lease":"ls_583f3ae391ef5b6885a3","tokens":103,"micros":52}]}');
INSERT INTO glmkit_prev_release.request_log VALUES ('2026120418440014592d3a275b9e2a', '', 1796409840680, 'default', 'e2e1f595062da81ae1d46ae9d41dc88c', 'embedding-2', 'embeddings', 0, 4, 0, 4, 0, 0, 7, 200, '', 'builtin', 2, '{"amount":2,"discount":2,"cash":0,"shortfall":0,"package_tokens":4,"parts":[{"source":"pkg_welcome_default","lease":"ls_6b688f5e751d632e4a37","tokens":4,"micros":2}]}');
INSERT INTO glmkit_prev_release.request_log VALUES ('20261204184400c92b4c451936edd3', '', 1796409840709, 'default', 'e2e1f595062da81ae1d46ae9d41dc88c', 'embedding-2', 'embeddings', 0, 4, 0, 4, 0, 0, 0, 200, '', 'builtin', 2, '{"amount":2,"discount":2,"cash":0,"shortfall":0,"package_tokens":4,"parts":[{"source":"pkg_welcome_default","lease":"ls_6b688f5e751d632e4a37","tokens":4,"micros":2}]}');
INSERT INTO glmkit_prev_release.request_log VALUES ('202612041844008480a17219a5623a', '', 1796409840730, 'default', 'e2e1f595062da81ae1d46ae9d41dc88c', 'embedding-2', 'embeddings', 0, 4, 0, 4, 0, 0, 0, 200, '', 'builtin', 2, '{"amount":2,"discount":2,"cash":0,"shortfall":0,"package_tokens":4,"parts":[{"source":"pkg_welcome_default","lease":"ls_6b688f5e751d632e4a37","tokens":4,"micros":2}]}');
INSERT INTO glmkit_prev_release.request_log VALUES ('202612041844000624546fc07ea144', '', 1796409840751, 'default', 'e2e1f595062da81ae1d46ae9d41dc88c', 'glmkit-embed-ngram', 'embeddings', 0, 1, 0, 1, 0, 0, 0, 200, '', 'builtin', 0, '{"amount":0,"discount":0,"cash":0,"shortfall":0,"package_tokens":0,"parts":null}');
INSERT INTO glmkit_prev_release.request_log VALUES ('20261204184400fc4099b1745a58ea', '', 1796409840773, 'broke', '8c17effc7204a4007c7fa6fe8d819233', 'embedding-2', 'embeddings', 0, 0, 0, 0, 0, 0, 2, 429, '1113', '', 0, '');


--
-- Data for Name: schema_migrations; Type: TABLE DATA; Schema: glmkit_prev_release; Owner: -
--

INSERT INTO glmkit_prev_release.schema_migrations VALUES ('0001_init', 1796409834355);


--
-- Data for Name: tasks; Type: TABLE DATA; Schema: glmkit_prev_release; Owner: -
--



--
-- Name: accounts accounts_pkey; Type: CONSTRAINT; Schema: glmkit_prev_release; Owner: -
--

ALTER TABLE ONLY glmkit_prev_release.accounts
    ADD CONSTRAINT accounts_pkey PRIMARY KEY (id);


--
-- Name: api_keys api_keys_pkey; Type: CONSTRAINT; Schema: glmkit_prev_release; Owner: -
--

ALTER TABLE ONLY glmkit_prev_release.api_keys
    ADD CONSTRAINT api_keys_pkey PRIMARY KEY (id);


--
-- Name: billing_credits billing_credits_pkey; Type: CONSTRAINT; Schema: glmkit_prev_release; Owner: -
--

ALTER TABLE ONLY glmkit_prev_release.billing_credits
    ADD CONSTRAINT billing_credits_pkey PRIMARY KEY (id);


--
-- Name: billing_leases billing_leases_pkey; Type: CONSTRAINT; Schema: glmkit_prev_release; Owner: -
--

ALTER TABLE ONLY glmkit_prev_release.billing_leases
    ADD CONSTRAINT billing_leases_pkey PRIMARY KEY (id);


--
-- Name: billing_limit_rules billing_limit_rules_pkey; Type: CONSTRAINT; Schema: glmkit_prev_release; Owner: -
--

ALTER TABLE ONLY glmkit_prev_release.billing_limit_rules
    ADD CONSTRAINT billing_limit_rules_pkey PRIMARY KEY (subject, id);


--
-- Name: billing_migrations billing_migrations_pkey; Type: CONSTRAINT; Schema: glmkit_prev_release; Owner: -
--

ALTER TABLE ONLY glmkit_prev_release.billing_migrations
    ADD CONSTRAINT billing_migrations_pkey PRIMARY KEY (version);


--
-- Name: billing_packages billing_packages_pkey; Type: CONSTRAINT; Schema: glmkit_prev_release; Owner: -
--

ALTER TABLE ONLY glmkit_prev_release.billing_packages
    ADD CONSTRAINT billing_packages_pkey PRIMARY KEY (id);


--
-- Name: billing_prices billing_prices_pkey; Type: CONSTRAINT; Schema: glmkit_prev_release; Owner: -
--

ALTER TABLE ONLY glmkit_prev_release.billing_prices
    ADD CONSTRAINT billing_prices_pkey PRIMARY KEY (model);


--
-- Name: billing_usage_parts billing_usage_parts_pkey; Type: CONSTRAINT; Schema: glmkit_prev_release; Owner: -
--

ALTER TABLE ONLY glmkit_prev_release.billing_usage_parts
    ADD CONSTRAINT billing_usage_parts_pkey PRIMARY KEY (request_id, seq);


--
-- Name: billing_usage billing_usage_pkey; Type: CONSTRAINT; Schema: glmkit_prev_release; Owner: -
--

ALTER TABLE ONLY glmkit_prev_release.billing_usage
    ADD CONSTRAINT billing_usage_pkey PRIMARY KEY (request_id);


--
-- Name: billing_wallets billing_wallets_pkey; Type: CONSTRAINT; Schema: glmkit_prev_release; Owner: -
--

ALTER TABLE ONLY glmkit_prev_release.billing_wallets
    ADD CONSTRAINT billing_wallets_pkey PRIMARY KEY (account_id);


--
-- Name: request_log request_log_pkey; Type: CONSTRAINT; Schema: glmkit_prev_release; Owner: -
--

ALTER TABLE ONLY glmkit_prev_release.request_log
    ADD CONSTRAINT request_log_pkey PRIMARY KEY (id);


--
-- Name: schema_migrations schema_migrations_pkey; Type: CONSTRAINT; Schema: glmkit_prev_release; Owner: -
--

ALTER TABLE ONLY glmkit_prev_release.schema_migrations
    ADD CONSTRAINT schema_migrations_pkey PRIMARY KEY (version);


--
-- Name: tasks tasks_pkey; Type: CONSTRAINT; Schema: glmkit_prev_release; Owner: -
--

ALTER TABLE ONLY glmkit_prev_release.tasks
    ADD CONSTRAINT tasks_pkey PRIMARY KEY (id);


--
-- Name: api_keys_account; Type: INDEX; Schema: glmkit_prev_release; Owner: -
--

CREATE INDEX api_keys_account ON glmkit_prev_release.api_keys USING btree (account_id);


--
-- Name: billing_leases_holder; Type: INDEX; Schema: glmkit_prev_release; Owner: -
--

CREATE INDEX billing_leases_holder ON glmkit_prev_release.billing_leases USING btree (holder, state);


--
-- Name: billing_leases_state; Type: INDEX; Schema: glmkit_prev_release; Owner: -
--

CREATE INDEX billing_leases_state ON glmkit_prev_release.billing_leases USING btree (state, expires_at);


--
-- Name: billing_packages_account; Type: INDEX; Schema: glmkit_prev_release; Owner: -
--

CREATE INDEX billing_packages_account ON glmkit_prev_release.billing_packages USING btree (account_id, expires_at);


--
-- Name: billing_usage_account; Type: INDEX; Schema: glmkit_prev_release; Owner: -
--

CREATE INDEX billing_usage_account ON glmkit_prev_release.billing_usage USING btree (account_id, created_at);


--
-- Name: billing_usage_created; Type: INDEX; Schema: glmkit_prev_release; Owner: -
--

CREATE INDEX billing_usage_created ON glmkit_prev_release.billing_usage USING btree (created_at);


--
-- Name: request_log_account_created; Type: INDEX; Schema: glmkit_prev_release; Owner: -
--

CREATE INDEX request_log_account_created ON glmkit_prev_release.request_log USING btree (account_id, created_at);


--
-- Name: request_log_created; Type: INDEX; Schema: glmkit_prev_release; Owner: -
--

CREATE INDEX request_log_created ON glmkit_prev_release.request_log USING btree (created_at);


--
-- Name: tasks_finished; Type: INDEX; Schema: glmkit_prev_release; Owner: -
--

CREATE INDEX tasks_finished ON glmkit_prev_release.tasks USING btree (finished_at);


--
-- Name: tasks_state_created; Type: INDEX; Schema: glmkit_prev_release; Owner: -
--

CREATE INDEX tasks_state_created ON glmkit_prev_release.tasks USING btree (state, created_at);


--
-- Name: api_keys api_keys_account_id_fkey; Type: FK CONSTRAINT; Schema: glmkit_prev_release; Owner: -
--

ALTER TABLE ONLY glmkit_prev_release.api_keys
    ADD CONSTRAINT api_keys_account_id_fkey FOREIGN KEY (account_id) REFERENCES glmkit_prev_release.accounts(id);


--
-- Name: tasks tasks_account_id_fkey; Type: FK CONSTRAINT; Schema: glmkit_prev_release; Owner: -
--

ALTER TABLE ONLY glmkit_prev_release.tasks
    ADD CONSTRAINT tasks_account_id_fkey FOREIGN KEY (account_id) REFERENCES glmkit_prev_release.accounts(id);


--
-- PostgreSQL database dump complete
--

\unrestrict gkh8kBHsHEv2YtGZQynxAtGhJh5MwMmgzLozL2GQg6Dm2BrG7qsejEKiXtqm85L

