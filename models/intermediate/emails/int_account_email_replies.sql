{#- int_email_account_interactions is read by name where it is used: DuckDB would keep an
    import CTE read twice whole in memory -#}
with

questions as (

    select
        account_id,
        conversation_id,
        sent_at
    from {{ ref('int_email_account_interactions') }}
    where not is_day_row and is_to_account and conversation_id is not null

),

answers as (

    select
        account_id,
        conversation_id,
        internet_message_id,
        sent_at,
        sent_date
    from {{ ref('int_email_account_interactions') }}
    where not is_day_row and is_from_account and conversation_id is not null

),

pairs as (

    -- each email from the account, with the latest earlier email to the account in the same
    -- conversation (whenever it was sent, even before the window)
    select
        answers.account_id,
        answers.internet_message_id,
        answers.conversation_id,
        answers.sent_at,
        answers.sent_date,
        max(questions.sent_at) as question_sent_at
    from answers
    inner join questions
        on
            answers.account_id = questions.account_id
            and answers.conversation_id = questions.conversation_id
            and answers.sent_at > questions.sent_at
    group by
        answers.account_id,
        answers.internet_message_id,
        answers.conversation_id,
        answers.sent_at,
        answers.sent_date

),

final as (

    select
        account_id,
        internet_message_id,
        conversation_id,
        sent_at,
        sent_date,
        question_sent_at,
        -- whole seconds: int_account_period_figures averages them exactly (exact_mean)
        {{ seconds_between('question_sent_at', 'sent_at') }} as reply_seconds
    from pairs

)

select * from final
