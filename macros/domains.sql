{#- Domains and host names: the domain of an email address, the host of a CRM's website, and
    counting and taking the dot-separated labels of a host name (how int_account_domains matches
    addresses to accounts). The engine-specific ones dispatch on the adapter: `default__` is
    the form DuckDB and Spark share, `postgres__` PostgreSQL's (macros/_macros.yml). -#}

{#- email_domain(address) -> the part of an email address after its last `@` (null when none).
        address: SQL expression of a string: the email address. -#}
{%- macro email_domain(address) -%}
    {{ return(adapter.dispatch('email_domain', 'account_engagement')(address)) }}
{%- endmacro -%}

{#- DuckDB and Spark -#}
{%- macro default__email_domain(address) -%}
    nullif(regexp_extract({{ address }}, '@([^@]+)$', 1), '')
{%- endmacro -%}

{%- macro postgres__email_domain(address) -%}
    substring({{ address }} from '@([^@]+)$')
{%- endmacro -%}

{#- url_host(url) -> the host name of a website as a CRM writes it, lower case, without
    scheme, user info, port, path, query, fragment or trailing dot:
    'https://www.acme.co.uk/x' -> 'www.acme.co.uk', 'Acme.com:8080' -> 'acme.com'.
    Null when there is none, or when the host is an IP address (no registered domain).
        url: SQL expression of a string: the website as written. -#}
{%- macro url_host(url) -%}
    {{ return(adapter.dispatch('url_host', 'account_engagement')(url)) }}
{%- endmacro -%}

{%- macro default__url_host(url) -%}
    {#- DuckDB and Spark (its rtrim(a, b) trims a from b: a regexp trims the dots) -#}
    nullif(
        regexp_replace(
            regexp_replace(
                regexp_extract(lower(trim({{ url }})), {{ url_host_pattern() }}, 1),
                '[.]+$',
                ''
            ),
            '^[0-9.]+$',
            ''
        ),
        ''
    )
{%- endmacro -%}

{%- macro postgres__url_host(url) -%}
    nullif(
        regexp_replace(
            rtrim(substring(lower(trim({{ url }})) from {{ url_host_pattern() }}), '.'),
            '^[0-9.]+$',
            ''
        ),
        ''
    )
{%- endmacro -%}

{#- url_host_pattern() -> the regular expression whose first group is a URL's host (a SQL
    string literal, shared by every url_host). No arguments. -#}
{%- macro url_host_pattern() -%}
    '^(?:[a-z][a-z0-9+.\-]*://)?(?:[^/?#@]*@)?([^/?#:\s]+)'
{%- endmacro -%}

{#- host_labels(host) -> the number of dot-separated labels of a host name (portable).
        host: SQL expression of a string: the host name. -#}
{%- macro host_labels(host) -%}
    ({{ dbt.length(host) }} - {{ dbt.length("replace(" ~ host ~ ", '.', '')") }} + 1)
{%- endmacro -%}

{#- last_labels(host, n) -> the last `n` dot-separated labels of a host name
    (last_labels("'www.acme.co.uk'", 2) -> 'co.uk'); '' or null when it has fewer.
        host: SQL expression of a string: the host name.
        n: how many labels, a whole number >= 1 known when the model compiles (not SQL). -#}
{%- macro last_labels(host, n) -%}
    {{ return(adapter.dispatch('last_labels', 'account_engagement')(host, n)) }}
{%- endmacro -%}

{#- DuckDB and Spark -#}
{%- macro default__last_labels(host, n) -%}
    regexp_extract({{ host }}, '((?:[^.]+[.]){{ '{' ~ (n - 1) ~ '}' }}[^.]+)$', 1)
{%- endmacro -%}

{%- macro postgres__last_labels(host, n) -%}
    substring({{ host }} from '((?:[^.]+[.]){{ '{' ~ (n - 1) ~ '}' }}[^.]+)$')
{%- endmacro -%}
