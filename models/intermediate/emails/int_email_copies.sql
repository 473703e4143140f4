{{ config(materialized='view') }}

with

messages as (

    select * from {{ ref('stg_graph__messages') }}
    where not is_removed

),

mail_folders as (

    select * from {{ ref('stg_graph__mail_folders') }}

),

located as (

    select
        messages.mailbox_id,
        messages.message_id,
        -- a message without an internetMessageId cannot be matched across mailboxes: each
        -- copy then stands for itself
        coalesce(
            messages.internet_message_id,
            {{ dbt.concat(["'graph:'", "messages.mailbox_id", "':'", "messages.message_id"]) }}
        ) as internet_message_id,
        messages.conversation_id,
        messages.sent_at,
        messages.sent_date,
        coalesce(messages.from_address, messages.sender_address) as from_address,
        messages.to_recipients,
        messages.cc_recipients,
        messages.bcc_recipients,
        messages.loaded_at,
        messages.is_draft
        or coalesce(
            mail_folders.excluded_reason = 'drafts' or lower(mail_folders.display_name) = 'drafts',
            false
        ) as is_draft_copy
    from messages
    left join mail_folders
        on
            messages.mailbox_id = mail_folders.mailbox_id
            and messages.folder_id = mail_folders.folder_id

),

final as (

    select
        mailbox_id,
        message_id,
        internet_message_id,
        conversation_id,
        sent_at,
        sent_date,
        from_address,
        to_recipients,
        cc_recipients,
        bcc_recipients,
        loaded_at
    from located
    where not is_draft_copy

)

select * from final
