with

accounts as (

    select * from {{ ref('stg_crm__accounts') }}

),

account_domains as (

    select * from {{ ref('int_account_domains') }}

),

public_email_domains as (

    select distinct lower(trim(seed.domain)) as email_domain
    from {{ ref('public_email_domains') }} as seed

),

org_domains as (

    select distinct org_domain
    from {{ ref('int_org_addresses') }}
    where org_domain is not null

),

flagged as (

    select
        accounts.account_id,
        accounts.account_name,
        accounts.website,
        account_domains.website_host,
        account_domains.registered_domain,
        public_email_domains.email_domain is not null as is_public_email_domain,
        org_domains.org_domain is not null as is_org_domain,
        case
            when account_domains.registered_domain is not null
                then count(*) over (partition by account_domains.registered_domain)
            else 0
        end as accounts_with_domain
    from accounts
    left join account_domains
        on accounts.account_id = account_domains.account_id
    left join public_email_domains
        on account_domains.registered_domain = public_email_domains.email_domain
    left join org_domains
        on account_domains.registered_domain = org_domains.org_domain

),

final as (

    select
        account_id,
        account_name,
        website,
        website_host,
        registered_domain,
        is_public_email_domain,
        is_org_domain,
        accounts_with_domain,
        coalesce(
            registered_domain is not null
            and not is_public_email_domain
            and not is_org_domain
            and accounts_with_domain = 1,
            false
        ) as is_matchable_domain
    from flagged

)

select * from final
