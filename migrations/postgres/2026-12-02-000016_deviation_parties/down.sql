DROP TABLE deviation_parties;
