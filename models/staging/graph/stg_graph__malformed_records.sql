with

source as (

    select * from {{ source('graph', 'malformed_records') }}

),

renamed as (

    select

        ---------- ids
        _mailbox_id as mailbox_id,
        _run_id as run_id,

        ---------- the record
        stream,
        record,
        problem,

        ---------- load metadata
        _loaded_at as loaded_at

    from source

)

select * from renamed
