{#- One row: a fingerprint of everything that decides which account or org user an address
    belongs to, apart from the addresses themselves. The models rebuilt by whole days store it
    on every row and rebuild every day when it changes (docs/incremental_models.md): a new CRM
    snapshot or another selection of mailboxes can bring old emails in or take them out. -#}
{%- set rule = dbt.concat(["kind", "'|'", "rule_key", "'|'", "rule_value"]) %}

with

org_rules as (

    select
        'org' as kind,
        org_address as rule_key,
        cast(user_id as {{ dbt.type_string() }}) as rule_value
    from {{ ref('int_org_addresses') }}

),

contact_rules as (

    select
        'contact' as kind,
        email_address as rule_key,
        cast(account_id as {{ dbt.type_string() }}) as rule_value
    from {{ ref('stg_crm__contacts') }}
    where email_address is not null and account_id is not null

),

domain_rules as (

    select
        'account' as kind,
        cast(account_id as {{ dbt.type_string() }}) as rule_key,
        {{ dbt.concat([
            "coalesce(registered_domain, '')", "'|'",
            "case when is_matchable_domain then 'matchable' else 'not' end",
        ]) }} as rule_value
    from {{ ref('int_accounts') }}

),

rules as (

    select * from org_rules
    union all
    select * from contact_rules
    union all
    select * from domain_rules
    union all
    select
        'var' as kind,
        'domain_matching' as rule_key,
        '{{ var("domain_matching") }}' as rule_value

),

final as (

    select {{ dbt.hash(sorted_lines(rule)) }} as address_rules
    from rules

)

select * from final
