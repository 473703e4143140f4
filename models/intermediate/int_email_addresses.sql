{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='written_address',
        on_schema_change='fail',
        pre_hook=["{{ empty_when_upstream_is_empty(ref('stg_graph__messages')) }}"],
    )
}}

{#- int_email_copies (a hundred million entries in its recipient lists) is read by name once
    per list: DuckDB would keep a CTE read four times whole in memory -#}
with

entries as (

    -- every address of every copy as written: the author (already trimmed and lower case in
    -- staging) and each to/cc/bcc entry, each list unnested on its own; an incremental build
    -- reads only the copies landed since the last one
    select
        written_address,
        loaded_at
    from (
        select
            loaded_at,
            from_address as written_address
        from {{ ref('int_email_copies') }}
        where {{ loaded_since_last_build('loaded_at') }}

        union all
        {{ recipient_addresses(
            ref('int_email_copies'), ['loaded_at'],
            where=loaded_since_last_build('email_copies.loaded_at'),
        ) | indent(4) }}
    ) as all_entries
    where written_address is not null

),

written_forms as (

    -- the few distinct forms (tens of thousands, next to a hundred million entries), each with
    -- its latest copy: an incremental build replaces the forms it saw (so the watermark
    -- moves on) and adds the new ones; a form whose emails are all gone stays (it only maps
    -- a form to its address, and counts nothing)
    select
        written_address,
        max(loaded_at) as loaded_at
    from entries
    group by written_address

),

final as (

    select
        written_forms.written_address,
        nullif(lower(trim(written_forms.written_address)), '') as address,
        written_forms.loaded_at
    from written_forms

)

select * from final
