DROP TABLE event_words_indexed;
DROP TABLE event_words;
DROP TABLE event_search;
