{{ config(materialized='ephemeral') }}

{#- The landed copies of sent messages that count: neither removed nor drafts, with a sent time,
    in int_email_copies' columns. Ephemeral: int_email_copies reads it once, and its filter on
    the landing reaches the raw messages. -#}
with

mail_folders as (

    select * from {{ ref('stg_graph__mail_folders') }}

),

final as (

    -- a draft: `isDraft`, or a copy in the Drafts folder (flagged `drafts` by the loader, its
    -- subfolders too, or named Drafts)
    select
        landed.sent_date,
        landed.mailbox_id,
        landed.message_id,
        -- a message without an internetMessageId cannot be matched across mailboxes: each
        -- copy then stands for itself
        coalesce(
            landed.internet_message_id,
            {{ dbt.concat(["'graph:'", "landed.mailbox_id", "':'", "landed.message_id"]) }}
        ) as internet_message_id,
        landed.conversation_id,
        landed.sent_at,
        coalesce(landed.from_address, landed.sender_address) as from_address,
        landed.to_addresses,
        landed.cc_addresses,
        landed.bcc_addresses,
        landed.loaded_at
    from {{ ref('stg_graph__messages') }} as landed
    left join mail_folders
        on
            landed.mailbox_id = mail_folders.mailbox_id
            and landed.folder_id = mail_folders.folder_id
    where
        landed.sent_date is not null
        and not landed.is_removed
        and not landed.is_draft
        and not coalesce(
            mail_folders.excluded_reason = 'drafts' or lower(mail_folders.display_name) = 'drafts',
            false
        )

)

select * from final
