-- The user's own model named `office`, like the package's: it stays in the project's schema
-- (`main`), and the package's `office` goes to the package's own.
select
    'the office of the user''s project' as note,
    42 as desks
