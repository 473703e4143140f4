{#-
    Helpers for the few models that are materialized incremental because a year of mail of
    2,500 mailboxes makes them the heavy ones (tens of millions of rows): each new build reads
    only what the loader landed since the last one. `dbt build --full-refresh` rebuilds them
    from scratch.
-#}


{#-
    loaded_since_last_build(loaded_at_column, this_loaded_at_column='loaded_at') -> predicate

    In an incremental run: the rows landed after the latest `loaded_at` already in this model.
    The loader stamps each batch it commits with the time of its commit, and dbt and a loader
    never write the warehouse at the same time (DuckDB's single writer), so every row of a
    later load is newer. The latest `loaded_at` is read when the model and its hooks
    are rendered, before any pre-hook deletes a row, so the model and its hooks agree on it;
    it is then a constant the engine can prune the scan with. In a full build, or when this
    model is empty: true.
-#}
{%- macro loaded_since_last_build(loaded_at_column, this_loaded_at_column='loaded_at') -%}
    {%- set watermark = none -%}
    {%- if is_incremental() and execute -%}
        {%- set existing = adapter.get_columns_in_relation(this) | map(attribute='name')
            | map('lower') | list -%}
        {%- if this_loaded_at_column | lower not in existing -%}
            {{ exceptions.raise_compiler_error(
                this ~ " was built by an older version of this project (it has no column "
                ~ this_loaded_at_column ~ "): rebuild it once with "
                ~ "`dbt build --full-refresh --select " ~ this.identifier ~ "+`"
            ) }}
        {%- endif -%}
        {%- set result = run_query(
            "select max(" ~ this_loaded_at_column ~ ") from " ~ this
        ) -%}
        {%- set watermark = result.columns[0].values()[0] -%}
    {%- endif -%}
    {%- if watermark is none -%}
    1 = 1
    {%- else -%}
    {{ loaded_at_column }} > {{ dbt.cast("'" ~ watermark ~ "'", dbt.type_timestamp()) }}
    {%- endif -%}
{%- endmacro -%}


{#-
    empty_when_upstream_is_empty(upstream) -> a pre-hook statement

    `remove graph` deletes the landed data; an incremental model would otherwise keep the
    rows it built from it. When `upstream` has no row left, this empties the model before the
    (then empty) increment is applied, so the outputs empty as INTERFACE.md promises.
-#}
{%- macro empty_when_upstream_is_empty(upstream) -%}
    {%- if is_incremental() -%}
    delete from {{ this }}
    where not exists (select 1 from {{ upstream }})
    {%- else -%}
    select 1 as nothing_to_empty
    {%- endif -%}
{%- endmacro -%}


{#-
    changed_email_ids() -> a select of `internet_message_id`

    The emails with a mailbox copy landed, changed or flagged removed since this model's last
    build (the id as int_email_copies writes it). Incremental email models recompute these
    from all their copies.
-#}
{%- macro changed_email_ids() -%}
    select distinct
        coalesce(
            internet_message_id,
            {{ dbt.concat(["'graph:'", "mailbox_id", "':'", "message_id"]) }}
        ) as internet_message_id
    from {{ ref('stg_graph__messages') }}
    where {{ loaded_since_last_build('loaded_at') }}
{%- endmacro -%}


{#-
    delete_changed_emails() -> a pre-hook statement

    Before an incremental build of an email model: deletes the rows of the changed emails, so
    that the increment replaces them whole (an email whose copies are all gone, or an address
    no longer on it, then leaves no row behind).
-#}
{%- macro delete_changed_emails() -%}
    {%- if is_incremental() -%}
    delete from {{ this }}
    where internet_message_id in ({{ changed_email_ids() }})
    {%- else -%}
    select 1 as nothing_to_delete
    {%- endif -%}
{%- endmacro -%}
