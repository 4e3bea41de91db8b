//! Listings bounded in bytes as well as rows. A listing first asks the database for the sizes
//! of the rows it would send (a light query: sizes, not values), keeps the leading rows that
//! fit in the byte budget, and only then reads those rows. A page of a thousand rows with
//! megabytes each therefore never reaches memory; the caller says where the next page starts.

use diesel::QueryResult;

use super::DbConnection;

/// What a row costs beyond its large columns (ids, times, JSON punctuation), counted against
/// the budget so that many small rows are bounded too.
pub const ROW_OVERHEAD: i64 = 256;

/// SQL for the size in bytes of text `column` in this connection's dialect (SQLite's
/// `length` of text counts characters).
pub fn octet_length(conn: &DbConnection, column: &str) -> String {
    match conn {
        DbConnection::Pg(_) => format!("CAST(coalesce(octet_length({column}), 0) AS BIGINT)"),
        DbConnection::Sqlite(_) => format!("coalesce(length(CAST({column} AS BLOB)), 0)"),
    }
}

/// How many leading rows of these sizes fit in `budget` bytes: always at least the first (a
/// row larger than the budget is sent alone, never withheld), 0 only when there are none.
pub fn rows_within(sizes: &[i64], budget: usize) -> usize {
    let mut used: usize = 0;
    for (n, size) in sizes.iter().enumerate() {
        let size = usize::try_from(size.saturating_add(ROW_OVERHEAD)).unwrap_or(usize::MAX);
        used = used.saturating_add(size);
        if used > budget && n > 0 {
            return n;
        }
    }
    sizes.len()
}

/// The second step of a bounded page: given the `sizes` of the rows the listing would send (one
/// more than `limit` when it wants to know whether more follow), reads with `rows(n)` the first
/// `n` that fit. `true` when more rows follow the page.
pub fn within<R>(
    sizes: &[i64],
    limit: usize,
    max_bytes: usize,
    rows: impl FnOnce(i64) -> QueryResult<Vec<R>>,
) -> QueryResult<(Vec<R>, bool)> {
    let fit = rows_within(&sizes[..sizes.len().min(limit)], max_bytes);
    if fit == 0 {
        return Ok((Vec::new(), false));
    }
    Ok((rows(fit as i64)?, fit < sizes.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_leading_rows_that_fit_and_always_the_first() {
        let row = 1000 - ROW_OVERHEAD;
        assert_eq!(rows_within(&[], 10_000), 0);
        assert_eq!(rows_within(&[row, row, row], 3000), 3);
        assert_eq!(rows_within(&[row, row, row], 2999), 2);
        assert_eq!(rows_within(&[row, row, row], 10), 1, "the first goes alone");
        assert_eq!(rows_within(&[i64::MAX, row], 10), 1);
        assert_eq!(
            rows_within(&[row, 10_000_000, row], 5000),
            1,
            "order is kept"
        );
    }
}
