{#-
    Hints to the engine's planner, each an adapter.dispatch macro: what DuckDB needs to pick
    a good plan for the incremental models and the key tests, and nothing (or its own
    equivalent) elsewhere. A Spark or Postgres variant is added here without touching a model.
-#}


{#-
    computed_first() -> the keyword that makes the engine compute a CTE once, before the rest
    of the query (`as {{ computed_first() }} (...)`): `materialized` on DuckDB and Postgres,
    nothing elsewhere (Spark has no such hint).

    An incremental model that keeps the rows of the changed emails of a table of tens of
    millions (`where internet_message_id in (changed ids)`) needs it on DuckDB: the engine
    cannot tell how few ids there are, joins the whole table with the rest of the query first
    and filters last (int_email_participants after one more day: 4.4 s, 0.1 s with it).
-#}
{%- macro computed_first() -%}
    {{ return(adapter.dispatch('computed_first', 'account_engagement')()) }}
{%- endmacro -%}

{%- macro default__computed_first() -%}
{%- endmacro -%}

{%- macro duckdb__computed_first() -%}
    materialized
{%- endmacro -%}

{%- macro postgres__computed_first() -%}
    materialized
{%- endmacro -%}


{#-
    at_most_rows(n) -> a clause closing a select that returns at most `n` rows, or nothing
    (n none)

    It tells the planner how few rows a subquery returns, where it cannot tell: DuckDB
    estimates the ids of the emails landed since the last build (a few thousand) at a fifth
    of all mail copies, and then builds its hash table on the other side of the join, tens of
    millions of rows (int_email_account_interactions after one more day at 2,500 mailboxes:
    2.3 s, 0.05 s with it). On DuckDB `limit n`, which never cuts anything (`n` counts the rows
    the ids come from, and no loader writes while dbt runs: DuckDB has a single writer);
    nothing elsewhere.
-#}
{%- macro at_most_rows(n) -%}
    {{ return(adapter.dispatch('at_most_rows', 'account_engagement')(n)) }}
{%- endmacro -%}

{%- macro default__at_most_rows(n) -%}
    {{ return('') }}
{%- endmacro -%}

{%- macro duckdb__at_most_rows(n) -%}
    {{ return('' if n is none else 'limit ' ~ (n | int)) }}
{%- endmacro -%}


{#-
    row_key_hash(columns) -> a SQL expression: one 64-bit hash of the columns' values (null
    included), or '' where the engine has no such function (DuckDB's `hash()`). Equal values
    give equal hashes; unequal values almost never do. The key tests group by it first.
-#}
{%- macro row_key_hash(columns) -%}
    {{ return(adapter.dispatch('row_key_hash', 'account_engagement')(columns)) }}
{%- endmacro -%}

{%- macro default__row_key_hash(columns) -%}
    {{ return('') }}
{%- endmacro -%}

{%- macro duckdb__row_key_hash(columns) -%}
    {{ return('hash(' ~ (columns | join(', ')) ~ ')') }}
{%- endmacro -%}
