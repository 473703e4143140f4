with

source as (

    select * from {{ source('graph', 'mail_folders') }}

),

renamed as (

    select

        ---------- ids
        _mailbox_id as mailbox_id,
        id as folder_id,
        "parentFolderId" as parent_folder_id,

        ---------- folder
        "displayName" as display_name,
        "totalItemCount" as total_item_count,
        _excluded_reason as excluded_reason,

        ---------- load metadata
        _loaded_at as loaded_at

    from source

)

select * from renamed
