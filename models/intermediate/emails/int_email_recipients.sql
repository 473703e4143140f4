{{ config(materialized='view') }}

{#- Each list is unnested on its own (concatenating the three lists first copies every
    entry), each from the copies by name: a view, so a model that reads it for a few days has
    the engine filter the copies before unnesting them. -#}
with

to_entries as (

    select
        internet_message_id,
        sent_date,
        loaded_at,
        {{ explode_list('to_addresses') }} as written_address
    from {{ ref('int_email_copies') }}

),

cc_entries as (

    select
        internet_message_id,
        sent_date,
        loaded_at,
        {{ explode_list('cc_addresses') }} as written_address
    from {{ ref('int_email_copies') }}

),

bcc_entries as (

    -- only the sender's copy shows bcc
    select
        internet_message_id,
        sent_date,
        loaded_at,
        {{ explode_list('bcc_addresses') }} as written_address
    from {{ ref('int_email_copies') }}

),

entries as (

    select * from to_entries
    union all
    select * from cc_entries
    union all
    select * from bcc_entries

),

final as (

    -- the address as written (int_address_accounts reads each written form once, trimmed and
    -- lower case); an entry without an address is nobody
    select
        internet_message_id,
        sent_date,
        written_address,
        loaded_at
    from entries
    where written_address is not null

)

select * from final
